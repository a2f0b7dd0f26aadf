"""A decoder-only transformer that reads and writes a paged KV cache: the engine's model.

One forward pass takes the new tokens of many sequences at once, packed end to end (a
prompt's chunk, or one token of a sequence being decoded). The projections and the MLP
run on all of them together, which is where batching pays; attention reads each
sequence's keys and values from its cache slots. Decoding sequences (one new token
each) are padded into one batched attention call; a prefill chunk attends by itself.
Sequences served with the same LoRA adapter are packed next to each other, one run of
rows per adapter: each projection runs on every row, then each run gets its adapter's
low-rank product (:mod:`loopline.llm.engine.adapters`).

A :class:`DecoderSpec` says which of the family's variants a model is, so the same code
runs loopline's own models (``loopline train llm``: SwiGLU, plain RMSNorm) and Gemma 3
(GELU-tanh gates, norms around both sublayers, query and key norms, a scaled
embedding, local sliding-window layers between global ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch's own name for it)
from torch import nn

if TYPE_CHECKING:
    from loopline.llm.engine.adapters import LoraAdapter


@dataclass(frozen=True, kw_only=True)
class DecoderSpec:
    """A decoder's shape and variant.

    Args:
        rope_theta: Each layer's rotary base.
        window: Each layer's sliding window in tokens (None: the whole context).
        activation: The MLP gate's: ``silu`` (SwiGLU) or ``gelu_tanh`` (GeGLU).
        sandwich_norms: Norms after the attention and the MLP too, before the residual
            add (Gemma 2 and 3).
        qk_norm: RMSNorm on each head's queries and keys (Gemma 3).
        norm_offset: RMSNorm scales by ``offset + weight`` (Gemma: 1).
        embed_scale: The token embedding is multiplied by it (Gemma: sqrt(d_model)).
        attn_scale: Softmax scale of the attention scores (default 1/sqrt(head_dim)).
    """

    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_dim: int
    max_positions: int
    rope_theta: tuple[float, ...]
    window: tuple[int | None, ...]
    norm_eps: float = 1e-5
    norm_offset: float = 0.0
    activation: Literal["silu", "gelu_tanh"] = "silu"
    sandwich_norms: bool = False
    qk_norm: bool = False
    embed_scale: float = 1.0
    attn_scale: float | None = None

    def __post_init__(self) -> None:
        if len(self.rope_theta) != self.n_layers or len(self.window) != self.n_layers:
            raise ValueError("rope_theta and window need one entry a layer.")


@dataclass
class Batch:
    """One forward pass's work (built by the engine).

    Args:
        tokens, positions, slots: Each new token, its position in its sequence, and the
            cache slot its key and value go to (T each).
        spans: Per sequence, ``(start, count)`` of its tokens in the packed arrays.
        keys: Per sequence, the cache slots of its whole context so far, new tokens
            included, in position order.
        logits_at: Indices into the packed tokens whose next-token logits are wanted.
        adapters: Runs of packed rows and the LoRA adapter each is served with (rows
            in none: the base model alone).
    """

    tokens: torch.Tensor
    positions: torch.Tensor
    slots: torch.Tensor
    spans: list[tuple[int, int]]
    keys: list[torch.Tensor]
    logits_at: torch.Tensor
    adapters: list[tuple[slice, LoraAdapter]] = field(default_factory=list)


class RMSNorm(nn.Module):
    """x / rms(x) * (offset + weight), in float32 (Gemma's offset is 1)."""

    def __init__(self, dim: int, eps: float, offset: float) -> None:
        super().__init__()
        self.eps, self.offset = eps, offset
        self.weight = nn.Parameter(torch.full((dim,), 1.0 - offset))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.float()
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)
        scale = self.weight.float() + self.offset if self.offset else self.weight.float()
        return (y * scale).to(x.dtype)


class Int8Linear(nn.Module):
    """Weight-only int8: each output channel's weights scaled into int8 (symmetric,
    per-channel), multiplied with bfloat16 activations by PyTorch's int8-weight kernel
    (``_weight_int8pack_mm``); a quarter of float32's weight bytes to read."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach().float()
        scales = w.abs().amax(dim=1).clamp(min=1e-12) / 127
        self.weight: torch.Tensor
        self.scales: torch.Tensor
        self.register_buffer(
            "weight", torch.round(w / scales[:, None]).clamp(-128, 127).to(torch.int8)
        )
        self.register_buffer("scales", scales.to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch._weight_int8pack_mm(x.to(torch.bfloat16), self.weight, self.scales)
        return y.to(x.dtype)


class Layer(nn.Module):
    def __init__(self, spec: DecoderSpec) -> None:
        super().__init__()
        d, h, kv, hd = spec.d_model, spec.n_heads, spec.n_kv_heads, spec.head_dim
        self.attn_norm = RMSNorm(d, spec.norm_eps, spec.norm_offset)
        self.qkv = nn.Linear(d, (h + 2 * kv) * hd, bias=False)
        self.o = nn.Linear(h * hd, d, bias=False)
        self.mlp_norm = RMSNorm(d, spec.norm_eps, spec.norm_offset)
        self.gate_up = nn.Linear(d, 2 * spec.ffn_dim, bias=False)
        self.down = nn.Linear(spec.ffn_dim, d, bias=False)
        if spec.qk_norm:
            self.q_norm, self.k_norm = (RMSNorm(hd, spec.norm_eps, spec.norm_offset) for _ in "qk")
        if spec.sandwich_norms:
            self.post_attn_norm = RMSNorm(d, spec.norm_eps, spec.norm_offset)
            self.post_mlp_norm = RMSNorm(d, spec.norm_eps, spec.norm_offset)


class PagedDecoder(nn.Module):
    """The model, its weights, and the KV cache of ``num_blocks * block_size`` slots a
    layer. Inference only."""

    def __init__(
        self, spec: DecoderSpec, *, num_blocks: int, block_size: int, dtype: torch.dtype
    ) -> None:
        super().__init__()
        self.spec = spec
        self.block_size = block_size
        self.embedding = nn.Embedding(spec.vocab_size, spec.d_model)
        self.layers = nn.ModuleList(Layer(spec) for _ in range(spec.n_layers))
        self.norm = RMSNorm(spec.d_model, spec.norm_eps, spec.norm_offset)
        self.head = nn.Linear(spec.d_model, spec.vocab_size, bias=False)
        self.head.weight = self.embedding.weight  # tied; untie by assigning another
        self.to(dtype)
        slots = num_blocks * block_size
        shape = (spec.n_layers, slots, spec.n_kv_heads, spec.head_dim)
        self.k_cache = torch.zeros(shape, dtype=dtype)
        self.v_cache = torch.zeros(shape, dtype=dtype)
        self.tables = {theta: _rotary(theta, spec.head_dim, spec.max_positions)
                       for theta in set(spec.rope_theta)}  # fmt: skip
        self.scale = spec.attn_scale if spec.attn_scale is not None else spec.head_dim**-0.5
        self.act = (F.silu if spec.activation == "silu"
                    else lambda x: F.gelu(x, approximate="tanh"))  # fmt: skip

    def quantize_int8(self) -> None:
        """Weight-only int8 for every projection and the head (:class:`Int8Linear`); the
        embedding stays as it is. Meant for a bfloat16 decoder."""
        for layer in cast(list[Layer], self.layers):
            for name in ("qkv", "o", "gate_up", "down"):
                setattr(layer, name, Int8Linear(getattr(layer, name)))
        self.head = Int8Linear(self.head)  # type: ignore[assignment]

    def weight_bytes(self) -> int:
        """Bytes of the weights (the cache apart), a tied head counted once."""
        seen: set[int] = set()
        total = 0
        for t in [*self.parameters(), *self.buffers()]:
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                total += t.numel() * t.element_size()
        return total

    def untie(self) -> None:
        """Give the output head weights of its own (not the embedding's)."""
        self.head.weight = nn.Parameter(self.embedding.weight.detach().clone())

    @property
    def dtype(self) -> torch.dtype:
        return self.k_cache.dtype

    def copy_block(self, source: int, target: int) -> None:
        """Copy one block's slots (copy on write of a shared block)."""
        bs = self.block_size
        for cache in (self.k_cache, self.v_cache):
            cache[:, target * bs : (target + 1) * bs] = cache[:, source * bs : (source + 1) * bs]

    @torch.inference_mode()
    def forward(self, batch: Batch) -> torch.Tensor:
        """Write the new tokens' keys and values to the cache; return the logits
        (float32) at ``batch.logits_at``."""
        spec = self.spec
        h, kv, hd = spec.n_heads, spec.n_kv_heads, spec.head_dim
        x = self.embedding(batch.tokens)
        if spec.embed_scale != 1.0:
            x = x * torch.tensor(spec.embed_scale, dtype=x.dtype)
        masks = _Masks(batch, spec)
        rotary = {theta: (cos[batch.positions].to(x.dtype), sin[batch.positions].to(x.dtype))
                  for theta, (cos, sin) in self.tables.items()}  # fmt: skip
        for i, layer in enumerate(cast(list[Layer], self.layers)):
            qkv = _project(layer.qkv, i, "qkv", layer.attn_norm(x), batch.adapters)
            q, k, v = torch.split(qkv, [h * hd, kv * hd, kv * hd], dim=-1)
            q, k, v = q.view(-1, h, hd), k.view(-1, kv, hd), v.view(-1, kv, hd)
            if spec.qk_norm:
                q, k = layer.q_norm(q), layer.k_norm(k)
            cos, sin = rotary[spec.rope_theta[i]]
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
            self.k_cache[i, batch.slots] = k
            self.v_cache[i, batch.slots] = v
            out = self._attend(i, q, masks, spec.window[i])
            out = _project(layer.o, i, "o", out.reshape(-1, h * hd), batch.adapters)
            if spec.sandwich_norms:
                out = layer.post_attn_norm(out)
            x = x + out
            gate_up = _project(layer.gate_up, i, "gate_up", layer.mlp_norm(x), batch.adapters)
            gate, up = gate_up.chunk(2, dim=-1)
            out = _project(layer.down, i, "down", self.act(gate) * up, batch.adapters)
            if spec.sandwich_norms:
                out = layer.post_mlp_norm(out)
            x = x + out
        x = self.norm(x[batch.logits_at])
        return self.head(x).float()  # type: ignore[no-any-return]

    def _attend(
        self, layer: int, q: torch.Tensor, masks: _Masks, window: int | None
    ) -> torch.Tensor:
        out = torch.empty_like(q)
        k_cache, v_cache = self.k_cache[layer], self.v_cache[layer]
        gqa = self.spec.n_kv_heads != self.spec.n_heads
        if masks.decode:  # one new token each: one padded, batched call
            rows = torch.tensor(masks.decode_rows)
            k, v = k_cache[masks.decode_slots], v_cache[masks.decode_slots]  # B, L, kv, hd
            att = F.scaled_dot_product_attention(
                q[rows].unsqueeze(2),  # B, h, 1, hd
                k.transpose(1, 2),
                v.transpose(1, 2),
                attn_mask=masks.decode_mask(window),
                scale=self.scale,
                enable_gqa=gqa,
            )
            out[rows] = att.squeeze(2)
        for start, count, slots, mask in masks.prefill(window):
            k, v = k_cache[slots].transpose(0, 1), v_cache[slots].transpose(0, 1)
            att = F.scaled_dot_product_attention(
                q[start : start + count].transpose(0, 1),  # h, n, hd
                k,
                v,
                attn_mask=mask,
                scale=self.scale,
                enable_gqa=gqa,
            )
            out[start : start + count] = att.transpose(0, 1)
        return out


class _Masks:
    """Which keys each query may see, built once a pass for each window size."""

    def __init__(self, batch: Batch, spec: DecoderSpec) -> None:
        self.batch = batch
        decode = [i for i, (_, n) in enumerate(batch.spans) if n == 1]
        self.decode = bool(decode)
        self.prefills = [i for i, (_, n) in enumerate(batch.spans) if n > 1]
        self._cache: dict[tuple[str, int | None], object] = {}
        if decode:
            self.decode_rows = [batch.spans[i][0] for i in decode]
            lengths = torch.tensor([len(batch.keys[i]) for i in decode])
            longest = int(lengths.max())
            self.decode_slots = torch.zeros((len(decode), longest), dtype=torch.long)
            for row, i in enumerate(decode):
                self.decode_slots[row, : len(batch.keys[i])] = batch.keys[i]
            self.lengths = lengths
            self.key_pos = torch.arange(longest)

    def decode_mask(self, window: int | None) -> torch.Tensor:
        key = ("decode", window)
        if key not in self._cache:
            last = (self.lengths - 1).unsqueeze(1)  # the query's position
            seen = self.key_pos.unsqueeze(0) <= last
            if window is not None:
                seen &= self.key_pos.unsqueeze(0) > last - window
            self._cache[key] = seen[:, None, None, :]  # B, 1, 1, L
        return self._cache[key]  # type: ignore[return-value]

    def prefill(self, window: int | None) -> list[tuple[int, int, torch.Tensor, torch.Tensor]]:
        key = ("prefill", window)
        if key not in self._cache:
            found = []
            for i in self.prefills:
                start, count = self.batch.spans[i]
                slots = self.batch.keys[i]
                kpos = torch.arange(len(slots))
                qpos = self.batch.positions[start : start + count].unsqueeze(1)
                mask = kpos.unsqueeze(0) <= qpos
                if window is not None:
                    mask &= kpos.unsqueeze(0) > qpos - window
                found.append((start, count, slots, mask))
            self._cache[key] = found
        return self._cache[key]  # type: ignore[return-value]


def _project(
    linear: nn.Module,
    layer: int,
    name: str,
    x: torch.Tensor,
    adapters: list[tuple[slice, LoraAdapter]],
) -> torch.Tensor:
    """``linear`` on every row, then each run of rows' adapter product added to its
    rows (slices: views, added in place)."""
    y: torch.Tensor = linear(x)
    for rows, adapter in adapters:
        adapter.apply(layer, name, x[rows], y[rows])
    return y


def _rotary(theta: float, head_dim: int, positions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (positions, head_dim / 2), in float32 as Hugging Face computes them
    (the reference the engine's tokens are checked against)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    angles = torch.arange(positions).float().unsqueeze(1) * inv_freq.unsqueeze(0)
    return angles.cos(), angles.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary positions on (tokens, heads, head_dim): each head's halves turn as pairs."""
    first, second = x.chunk(2, dim=-1)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)
