"""LoRA adapters served per request: several fine-tunings over one base model.

A LoRA adapter (Hu et al., 2021) leaves the base weights alone and adds a low-rank
product to some linear layers' outputs, ``y += (x @ A.T @ B.T) * scale`` with A
(rank, in) and B (out, rank). Since the base is shared, one engine serves many
adapters at once: a forward pass runs the base projections on every packed token, then
adds each adapter's product on the rows of the sequences that named it.

**Reading.** :func:`read_adapter` takes the folder PEFT's ``save_pretrained`` writes
for a Gemma- or Llama-style causal LM (``adapter_config.json`` and
``adapter_model.safetensors``), targeting any of ``q_proj``, ``k_proj``, ``v_proj``,
``o_proj``, ``gate_proj``, ``up_proj`` and ``down_proj``, with ``scale = lora_alpha / r``
(``/ sqrt(r)`` with rsLoRA). What would change the arithmetic beyond that (DoRA,
biases, modules to save, other targets, per-module ranks) is refused by name, not
served wrong.

**Fused layers.** The decoder fuses q, k and v into one ``qkv`` linear, and gate and up
into ``gate_up``. The adapter is fused the same way: the parts' A matrices stacked,
and their B matrices placed block-diagonally (each part's outputs read only its own
rank's columns), so a fused layer costs one pair of small products a run of rows, not
one a part. A part the adapter leaves out has no columns at all.

**Identity.** :attr:`LoraAdapter.digest` hashes the adapter's two files: the prefix
cache roots an adapter's chain of block names in it (:mod:`loopline.llm.engine.kv`), so
no two adapters share keys and values, and an adapter loaded again with other weights
does not reuse the old ones' blocks.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch's own name for it)
from safetensors.torch import load as load_safetensors

from loopline.llm.engine.decoder import DecoderSpec

# the engine's fused linears, and the PEFT modules they are made of, in output order
FUSED: dict[str, tuple[str, ...]] = {
    "qkv": ("q_proj", "k_proj", "v_proj"),
    "o": ("o_proj",),
    "gate_up": ("gate_proj", "up_proj"),
    "down": ("down_proj",),
}
CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"  # PEFT's folder
FILES = (CONFIG, WEIGHTS)
TARGETS = frozenset(part for parts in FUSED.values() for part in parts)
KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")
# config fields that change the arithmetic beyond y += (x A^T B^T) scale, when set
UNSUPPORTED = (
    "use_dora", "fan_in_fan_out", "modules_to_save", "rank_pattern", "alpha_pattern",
    "lora_bias", "trainable_token_indices", "layer_replication", "target_parameters",
    "alora_invocation_tokens", "use_qalora", "use_bdlora", "arrow_config", "kasa_config",
    "monteclora_config",
)  # fmt: skip
# initialisations that leave the base weights as they are (PiSSA, OLoRA, LoftQ and
# the like change them, and the adapter is then meant for the changed base)
PLAIN_INITS = (True, False, "gaussian", "eva", "orthogonal")


class AdapterInUseError(RuntimeError):
    """An adapter some waiting or running sequence uses cannot be unloaded yet."""


@dataclass(frozen=True, eq=False)
class LoraAdapter:
    """An adapter on the engine's fused layers, in the decoder's dtype (see the module).

    Attributes:
        digest: A hash of the adapter's files: its identity in the prefix cache.
        scale: What the low-rank product is multiplied by.
        layers: Per decoder layer, each fused linear it adapts (``qkv``, ``o``,
            ``gate_up``, ``down``) to its stacked A (rank, in) and block-diagonal B
            (out, rank).
    """

    digest: bytes
    scale: float
    layers: tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], ...]

    def apply(self, layer: int, linear: str, x: torch.Tensor, y: torch.Tensor) -> None:
        """Add the adapter's product to ``y``, the base output of ``linear`` for the
        rows ``x``, in place."""
        pair = self.layers[layer].get(linear)
        if pair is not None:
            a, b = pair
            y += F.linear(F.linear(x, a), b) * self.scale


def read_adapter(folder: Path, *, spec: DecoderSpec, dtype: torch.dtype) -> LoraAdapter:
    """Read a PEFT LoRA folder for a decoder of ``spec`` whose activations are ``dtype``.

    Safe on any thread: it touches no engine.

    Raises:
        ValueError: The adapter uses something not supported (named), or its shapes do
            not fit ``spec``.
    """
    raw_config = (folder / CONFIG).read_bytes()
    raw_weights = (folder / WEIGHTS).read_bytes()
    config = json.loads(raw_config)
    scale = _scale(config, folder)
    parts = _parts(load_safetensors(raw_weights), spec, int(config["r"]), folder)
    sizes = _sizes(spec)
    layers = tuple(
        {
            linear: _fuse([parts.get((i, n)) for n in names], [sizes[n][1] for n in names], dtype)
            for linear, names in FUSED.items()
            if any((i, n) in parts for n in names)
        }
        for i in range(spec.n_layers)
    )
    digest = hashlib.blake2b(raw_config + raw_weights, digest_size=16).digest()
    return LoraAdapter(digest=digest, scale=scale, layers=layers)


def _scale(config: dict[str, Any], folder: Path) -> float:
    """``lora_alpha / r`` (rsLoRA: ``/ sqrt(r)``), having refused what is unsupported."""
    where = f"The LoRA adapter in {folder}"
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{where} is a {config['peft_type']} adapter; only LORA is served.")
    for name in UNSUPPORTED:
        if config.get(name):
            raise ValueError(f"{where} sets {name!r} ({config[name]!r}), which is not "
                             "supported; train it without.")  # fmt: skip
    if config.get("bias", "none") != "none":
        raise ValueError(f"{where} trains biases (bias={config['bias']!r}); only "
                         "bias='none' is supported.")  # fmt: skip
    if config.get("init_lora_weights", True) not in PLAIN_INITS:
        raise ValueError(f"{where} was initialised with init_lora_weights="
                         f"{config['init_lora_weights']!r}, which changes the base "
                         "weights; convert it to a plain LoRA adapter first.")  # fmt: skip
    targets = config.get("target_modules") or []
    if isinstance(targets, list) and not set(targets) <= TARGETS:
        raise ValueError(f"{where} targets {sorted(set(targets) - TARGETS)}; only "
                         f"{sorted(TARGETS)} are supported.")  # fmt: skip
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def _sizes(spec: DecoderSpec) -> dict[str, tuple[int, int]]:
    """Each PEFT module's (in, out) features in a decoder of ``spec``."""
    d, q, kv = spec.d_model, spec.n_heads * spec.head_dim, spec.n_kv_heads * spec.head_dim
    return {"q_proj": (d, q), "k_proj": (d, kv), "v_proj": (d, kv), "o_proj": (q, d),
            "gate_proj": (d, spec.ffn_dim), "up_proj": (d, spec.ffn_dim),
            "down_proj": (spec.ffn_dim, d)}  # fmt: skip


def _parts(
    tensors: dict[str, torch.Tensor], spec: DecoderSpec, rank: int, folder: Path
) -> dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]]:
    """(layer, module) to its (A, B) in float32, every tensor's name and shape checked."""
    found: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        match = KEY.search(key)
        if match is None or match[2] not in TARGETS or int(match[1]) >= spec.n_layers:
            raise ValueError(f"The LoRA adapter in {folder} has a tensor {key!r} the "
                             f"engine cannot place; only {sorted(TARGETS)} of the "
                             f"model's {spec.n_layers} layers are supported.")  # fmt: skip
        found.setdefault((int(match[1]), match[2]), {})[match[3]] = tensor.float()
    sizes = _sizes(spec)
    parts = {}
    for (layer, name), pair in found.items():
        a, b = pair.get("A"), pair.get("B")
        want = [(rank, sizes[name][0]), (sizes[name][1], rank)]
        if a is None or b is None or [tuple(a.shape), tuple(b.shape)] != want:
            got = [tuple(t.shape) if t is not None else None for t in (a, b)]
            raise ValueError(f"The LoRA adapter in {folder} has A, B of shapes {got} for "
                             f"layer {layer}'s {name}; this model needs {want}.")  # fmt: skip
        parts[layer, name] = (a, b)
    return parts


def _fuse(
    parts: list[tuple[torch.Tensor, torch.Tensor] | None], outs: list[int], dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """One fused linear's A (its parts' stacked) and B (theirs, block-diagonal)."""
    a = torch.cat([part[0] for part in parts if part is not None])
    b = torch.zeros(sum(outs), a.shape[0])
    row = col = 0
    for part, out in zip(parts, outs, strict=True):
        if part is not None:
            rank = part[1].shape[1]
            b[row : row + out, col : col + rank] = part[1]
            col += rank
        row += out
    return a.to(dtype), b.to(dtype)
