"""Decoder-only transformer shapes: rotary positions, RMSNorm, SwiGLU, grouped-query
attention. A shape is plain data (no PyTorch here): the trainer builds it, the planner
counts its parameters and FLOPs.

Named shapes run from a test model to the seed's 175B. ``gpt3-175b`` keeps GPT-3's width,
depth, heads and context (Brown et al. 2020, table 2.1: 96 layers, d_model 12,288, 96
heads, 2,048 tokens) in this architecture: SwiGLU at 8/3 of the width holds the MLP at
GPT-3's 8 d^2 parameters, and every head keeps its own keys and values (as GPT-3's
did), so the count stays at 175B.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from loopline.exceptions import ConfigError


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """A decoder-only transformer's shape.

    Args:
        vocab_size: Tokens of the tokenizer.
        d_model: Width of the residual stream.
        n_layers: Transformer blocks.
        n_heads: Query heads (``d_model`` divides into them).
        n_kv_heads: Key/value heads (grouped-query attention: ``n_heads`` a multiple).
        ffn_dim: Hidden width of the SwiGLU MLP (default: 8/3 of ``d_model``, rounded up
            to a multiple of 64).
        seq_len: Context length in tokens.
        rope_theta: Base of the rotary position frequencies.
        norm_eps: RMSNorm's epsilon.
        tie_embeddings: Whether the output head reuses the token embedding.
    """

    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int = 0
    seq_len: int = 256
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        positive = ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "seq_len")
        bad = [name for name in positive if getattr(self, name) <= 0]
        if bad:
            raise ConfigError(f"ModelConfig: {', '.join(bad)} must be > 0.")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ConfigError(
                f"ModelConfig: d_model {self.d_model} must split into {self.n_heads} heads "
                "of an even width (rotary positions turn pairs)."
            )
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(
                f"ModelConfig: n_heads {self.n_heads} must be a multiple of n_kv_heads "
                f"{self.n_kv_heads}."
            )
        if self.ffn_dim == 0:
            object.__setattr__(self, "ffn_dim", 64 * math.ceil(8 * self.d_model / 3 / 64))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def layer_params(self) -> int:
        """Parameters of one block: attention (q, k, v, o), SwiGLU (gate, up, down), two
        RMSNorm weights."""
        d, kv = self.d_model, self.n_kv_heads * self.head_dim
        return d * d + 2 * d * kv + d * d + 3 * d * self.ffn_dim + 2 * d

    def params(self) -> int:
        """All parameters: embedding, blocks, final norm, output head (unless tied)."""
        embedding = self.vocab_size * self.d_model
        head = 0 if self.tie_embeddings else embedding
        return embedding + self.n_layers * self.layer_params() + self.d_model + head

    def flops_per_token(self) -> float:
        """Training FLOPs a token, forward and backward: 6 per parameter of a matrix the
        token goes through (Kaplan et al. 2020) plus the attention scores' 6 * 2 *
        n_layers * seq_len * d_model (causal: half of it is masked, counted as done, as
        the kernels do)."""
        matrices = self.n_layers * (self.layer_params() - 2 * self.d_model)
        matrices += self.vocab_size * self.d_model  # the output head (tied or not)
        return 6.0 * matrices + 12.0 * self.n_layers * self.seq_len * self.d_model

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CONFIGS: dict[str, ModelConfig] = {
    # what the tests train: ~0.16M parameters
    "tiny": ModelConfig(
        vocab_size=1024, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, seq_len=128
    ),
    # the demo's model: a few minutes on two CPU cores
    "small": ModelConfig(
        vocab_size=4096, d_model=192, n_layers=4, n_heads=6, n_kv_heads=2, seq_len=256
    ),
    # ~350M: the size whose MFU is measured on one GPU
    "350m": ModelConfig(
        vocab_size=32_768,
        d_model=1024,
        n_layers=24,
        n_heads=16,
        n_kv_heads=4,
        seq_len=2048,
        tie_embeddings=False,
    ),
    "gpt3-175b": ModelConfig(
        vocab_size=50_257,
        d_model=12_288,
        n_layers=96,
        n_heads=96,
        n_kv_heads=96,
        ffn_dim=32_768,
        seq_len=2048,
        tie_embeddings=False,
    ),
}


def named(name: str, **changes: Any) -> ModelConfig:
    """A named shape, with fields changed (``vocab_size`` of the tokenizer trained)."""
    if name not in CONFIGS:
        raise ConfigError(f"No model shape {name!r}; known: {', '.join(CONFIGS)}.")
    return replace(CONFIGS[name], **changes)


def shape_for(params: float, *, vocab_size: int = 50_257, seq_len: int = 2048) -> ModelConfig:
    """A shape of about ``params`` parameters, GPT-3's proportions: width 128 per layer
    (12,288 / 96), heads of 128, four query heads to a key/value head; width a multiple
    of 128 and the depth that brings the count nearest."""
    if params < 1e6:
        raise ConfigError(f"shape_for: {params:.3g} parameters is below what it plans.")
    width = max(128, 128 * round((params * 128 / 12) ** (1 / 3) / 128))
    heads = width // 128
    one = ModelConfig(
        vocab_size=vocab_size, d_model=width, n_layers=1, n_heads=heads,
        n_kv_heads=heads // 4 if heads % 4 == 0 else heads, seq_len=seq_len,
        tie_embeddings=False,
    )  # fmt: skip
    outside = one.params() - one.layer_params()  # embedding, head, final norm
    return replace(one, n_layers=max(1, round((params - outside) / one.layer_params())))
