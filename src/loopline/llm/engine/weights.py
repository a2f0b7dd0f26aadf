"""Models into the engine's :class:`~loopline.llm.engine.decoder.PagedDecoder`: a model
trained by ``loopline train llm`` (its :class:`~loopline.llm.model.Transformer`), or a
registered version of one."""

from __future__ import annotations

from typing import Any

import torch

from loopline.llm.engine.decoder import DecoderSpec, PagedDecoder
from loopline.llm.model import Transformer
from loopline.registry import Pinned


def spec_of(model: Transformer) -> DecoderSpec:
    c = model.config
    return DecoderSpec(
        vocab_size=c.vocab_size, d_model=c.d_model, n_layers=c.n_layers, n_heads=c.n_heads,
        n_kv_heads=c.n_kv_heads, head_dim=c.head_dim, ffn_dim=c.ffn_dim,
        max_positions=c.seq_len, rope_theta=(c.rope_theta,) * c.n_layers,
        window=(None,) * c.n_layers, norm_eps=c.norm_eps,
    )  # fmt: skip


def from_transformer(
    model: Transformer,
    *,
    num_blocks: int,
    block_size: int = 16,
    dtype: torch.dtype = torch.float32,
) -> PagedDecoder:
    """The engine's decoder with ``model``'s weights (query, key and value projections
    fused into one matrix, as the gate and up projections)."""
    theirs = model.state_dict()
    mine: dict[str, torch.Tensor] = {
        "embedding.weight": theirs["embedding.weight"],
        "head.weight": theirs["head.weight"],
        "norm.weight": theirs["norm.weight"],
    }
    for i in range(model.config.n_layers):
        a, m = f"layers.{i}.attention.", f"layers.{i}.mlp."
        mine |= {
            f"layers.{i}.attn_norm.weight": theirs[f"layers.{i}.attention_norm.weight"],
            f"layers.{i}.qkv.weight": torch.cat([theirs[a + w + ".weight"] for w in "qkv"]),
            f"layers.{i}.o.weight": theirs[a + "o.weight"],
            f"layers.{i}.mlp_norm.weight": theirs[f"layers.{i}.mlp_norm.weight"],
            f"layers.{i}.gate_up.weight": torch.cat([theirs[m + "gate.weight"],
                                                     theirs[m + "up.weight"]]),
            f"layers.{i}.down.weight": theirs[m + "down.weight"],
        }  # fmt: skip
    decoder = PagedDecoder(spec_of(model), num_blocks=num_blocks, block_size=block_size,
                           dtype=dtype)  # fmt: skip
    if not model.config.tie_embeddings:
        decoder.untie()
    decoder.load_state_dict(mine, strict=True)
    return decoder.eval()


def from_version(
    pinned: Pinned, *, num_blocks: int, block_size: int = 16, dtype: torch.dtype = torch.float32
) -> tuple[PagedDecoder, Any]:
    """A registered version's decoder and tokenizer, every file checked as it is read."""
    from loopline.llm.export import load

    model, tokenizer = load(pinned)
    return from_transformer(model, num_blocks=num_blocks, block_size=block_size,
                            dtype=dtype), tokenizer  # fmt: skip
