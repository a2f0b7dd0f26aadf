"""Pretrained models from GGUF files (llama.cpp's format) into the engine: Gemma 3.

The file's tensors are dequantized (``gguf``'s reference kernels, Q4_K / Q5_0 / Q6_K /
Q8_0 blocks to float32) and mapped onto the engine's names: query, key and value
projections fused, gate and up fused, the head tied to the embedding. llama.cpp stores
Gemma's RMSNorm weights with their 1 added; they are stored here as ``w - 1`` with
``norm_offset = 1``, the very float32 operations of the Hugging Face implementation
(the reference the engine's tokens are checked against). Gemma 3's pattern: every
sixth layer attends to the whole context with rotary base 1,000,000, the others to a
sliding window of 512 tokens with base 10,000 (the Gemma 3 technical report, 2025).

The tokenizer comes from the file's vocabulary through ``transformers``' GGUF
converter, once, and is kept as a ``tokenizers`` JSON beside the dequantized weights
in a cache folder named by the file's SHA-256.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from loopline.llm.engine.decoder import DecoderSpec, PagedDecoder
from loopline.packaged import file_digest

GLOBAL_EVERY = 6  # Gemma 3: five local layers, then a global one
LOCAL_ROPE_THETA = 10_000.0
CACHE = Path(os.environ.get("LOOPLINE_CACHE", Path.home() / ".cache" / "loopline")) / "gguf"
NORMS = ("attn_norm", "attn_q_norm", "attn_k_norm", "post_attention_norm", "ffn_norm",
         "post_ffw_norm")  # fmt: skip


def read_spec(fields: dict[str, Any]) -> DecoderSpec:
    """The decoder's shape from a GGUF file's metadata (Gemma 3 only)."""
    arch = fields["general.architecture"]
    if arch != "gemma3":
        raise ValueError(f"GGUF architecture {arch!r} is not supported (gemma3 is).")

    def get(key: str) -> Any:
        return fields[f"{arch}.{key}"]

    layers = int(get("block_count"))
    window = int(get("attention.sliding_window"))
    is_global = [(i + 1) % GLOBAL_EVERY == 0 for i in range(layers)]
    head_dim = int(get("attention.key_length"))
    theta = float(get("rope.freq_base"))
    return DecoderSpec(
        vocab_size=len(fields["tokenizer.ggml.tokens"]),
        d_model=int(get("embedding_length")),
        n_layers=layers,
        n_heads=int(get("attention.head_count")),
        n_kv_heads=int(get("attention.head_count_kv")),
        head_dim=head_dim,
        ffn_dim=int(get("feed_forward_length")),
        max_positions=int(get("context_length")),
        rope_theta=tuple(theta if g else LOCAL_ROPE_THETA for g in is_global),
        window=tuple(None if g else window for g in is_global),
        norm_eps=float(get("attention.layer_norm_rms_epsilon")),
        norm_offset=1.0,
        activation="gelu_tanh",
        sandwich_norms=True,
        qk_norm=True,
        embed_scale=math.sqrt(int(get("embedding_length"))),
        attn_scale=head_dim**-0.5,  # query_pre_attn_scalar = head_dim for the 270M
    )


def _weights(tensors: dict[str, np.ndarray], spec: DecoderSpec) -> dict[str, torch.Tensor]:
    def t(name: str) -> torch.Tensor:
        array = tensors[name]
        if name.endswith(tuple(f"{n}.weight" for n in (*NORMS, "output_norm"))):
            array = array - np.float32(1.0)  # the file holds 1 + w
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    out = {
        "embedding.weight": t("token_embd.weight"),
        "norm.weight": t("output_norm.weight"),
    }
    out["head.weight"] = out["embedding.weight"]
    for i in range(spec.n_layers):
        b, m = f"blk.{i}.", f"layers.{i}."
        out |= {
            m + "attn_norm.weight": t(b + "attn_norm.weight"),
            m + "qkv.weight": torch.cat([t(b + f"attn_{x}.weight") for x in "qkv"]),
            m + "q_norm.weight": t(b + "attn_q_norm.weight"),
            m + "k_norm.weight": t(b + "attn_k_norm.weight"),
            m + "o.weight": t(b + "attn_output.weight"),
            m + "post_attn_norm.weight": t(b + "post_attention_norm.weight"),
            m + "mlp_norm.weight": t(b + "ffn_norm.weight"),
            m + "gate_up.weight": torch.cat([t(b + "ffn_gate.weight"), t(b + "ffn_up.weight")]),
            m + "down.weight": t(b + "ffn_down.weight"),
            m + "post_mlp_norm.weight": t(b + "post_ffw_norm.weight"),
        }
    return out


def convert(path: Path, cache: Path = CACHE) -> Path:
    """Dequantize a GGUF file once into ``cache/<sha256>/``: ``model.safetensors``
    (float32, the engine's names), ``spec.json``, ``tokenizer.json`` and
    ``generation.json`` (its special tokens); return the folder."""
    digest = file_digest(path)
    folder = cache / digest
    if (folder / "spec.json").exists():
        return folder
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(path))
    fields = {k: f.contents() for k, f in reader.fields.items()}
    spec = read_spec(fields)
    tensors = {t.name: dequantize(t.data, t.tensor_type) for t in reader.tensors}
    weights = _weights(tensors, spec)
    del weights["head.weight"]  # tied: stored once
    staging = cache / f".{digest}.{os.getpid()}.partial"
    staging.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(staging / "model.safetensors"))
    _tokenizer(path, staging)
    generation = {k: fields.get(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "pad")}
    generation["add_bos"] = bool(fields.get("tokenizer.ggml.add_bos_token", False))
    (staging / "generation.json").write_text(json.dumps(generation))
    spec_json = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.__dict__.items()}
    (staging / "spec.json").write_text(json.dumps(spec_json))
    os.replace(staging, folder)
    return folder


def _tokenizer(path: Path, folder: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    (folder / "tokenizer.json").write_text(tokenizer.backend_tokenizer.to_str())


def load_spec(folder: Path) -> DecoderSpec:
    raw = json.loads((folder / "spec.json").read_text())
    raw["rope_theta"], raw["window"] = tuple(raw["rope_theta"]), tuple(raw["window"])
    return DecoderSpec(**raw)


def decoder(
    folder: Path, *, num_blocks: int, block_size: int = 16, dtype: torch.dtype = torch.float32
) -> PagedDecoder:
    """The engine's decoder from a :func:`convert` ed folder."""
    spec = load_spec(folder)
    model = PagedDecoder(spec, num_blocks=num_blocks, block_size=block_size, dtype=dtype)
    weights = load_file(str(folder / "model.safetensors"))
    weights["head.weight"] = weights["embedding.weight"]
    model.load_state_dict(weights, strict=True)
    return model.eval()
