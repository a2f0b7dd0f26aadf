"""LLM training benchmark: the loopline trainer against a plain PyTorch loop.

    loopline bench llm-train [--seconds S] [--shape NAME] [--processes N] [--json]

* ``baseline_tokens_per_s``: one process, the same model, batch, micro-batches and
  AdamW in a plain loop (no FSDP, no checkpoints, no evaluation), PyTorch using every
  core (or the GPU, in bf16 autocast); steps after three warm-up steps.
* ``tokens_per_s``: ``loopline train llm`` (FSDP2 over torchrun, its default workers or
  ``--processes``; fp32 on a CPU, bf16 on a GPU) on the same cores, for about S seconds
  of training: the median step; ``tokens_per_s_wall`` counts every second from its
  fourth step to its last, checkpoints (every quarter) and the final evaluation
  included. On a GPU also ``mfu`` (median step, 6ND FLOPs against the GPU's dense bf16
  peak), ``memory_gib`` (peak allocated) and ``device``.
* ``val_bits_per_byte``: that run's held-out loss at its end, in bits per byte, beside
  ``unigram_bits_per_byte`` (the held-out text under the training text's byte
  frequencies).
* ``resume_exact``: a tiny model's run with its last rank killed after step 5
  (checkpoints every 3) and resumed by torchrun, against the same run uninterrupted:
  every step's loss equal.

Defaults: the ``small`` shape and 256-token windows on a CPU, ``350m`` and 2,048 on a GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from loopline.llm import data
from loopline.llm.configs import named
from loopline.llm.launch import default_processes, launch
from loopline.llm.model import Transformer

SETTINGS = """
[model]
shape = "{shape}"
seq_len = {seq_len}
[data]
folder = "{data}"
vocab_size = {vocab}
[train]
steps = {steps}
global_batch = 16
micro_batch = 4
lr = 3e-3
warmup = {warmup}
checkpoint_every = {every}
eval_every = {steps}
eval_batches = 8
precision = "{precision}"
activation_checkpointing = false
reshard_after_forward = false
out = "{out}"
"""


def baseline(manifest: data.Manifest, shape: str, seq_len: int, steps: int) -> float:
    """Tokens/s of a plain single-process loop over the same batches."""
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    model = Transformer(named(shape, vocab_size=manifest.vocab_size, seq_len=seq_len))
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95))
    tokens = data.Tokens(manifest, "train")
    sampler = data.Sampler(len(tokens), seq_len, 16, seed=0)
    precision = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    started = 0.0
    for step in range(3 + steps):
        if step == 3:
            if cuda:
                torch.cuda.synchronize()
            started = time.perf_counter()
        windows = [torch.from_numpy(tokens.window(int(a), seq_len + 1)) for a in sampler.next()]
        batch = torch.stack(windows).to(device)
        for i in range(4):
            with precision:
                loss = model.loss(batch[i * 4 : (i + 1) * 4]) / 4
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
    return steps * 16 * seq_len / (time.perf_counter() - started)


def records(run: Path) -> list[dict[str, Any]]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if "loss" in json.loads(x)]


def losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in records(run)}


def write(tmp: Path, name: str, **values: Any) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(SETTINGS.format(data=tmp / "shards", out=tmp / name, **values))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--shape", help="default: small on a CPU, 350m on a GPU")
    parser.add_argument("--seq-len", type=int, help="default: 256 on a CPU, 2048 on a GPU")
    parser.add_argument("--processes", type=int, help="trainer workers (default: launch's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    args.shape = args.shape or ("350m" if cuda else "small")
    args.seq_len = args.seq_len or (2048 if cuda else 256)
    precision = "bf16" if cuda else "fp32"
    device = torch.cuda.get_device_name() if cuda else "cpu"
    out: dict[str, Any] = {"benchmark": "llm-train", "shape": args.shape, "device": device,
                           "precision": precision}  # fmt: skip
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        manifest = data.prepare(tmp / "shards", vocab_size=4096)
        out["unigram_bits_per_byte"] = round(manifest.unigram_bits_per_byte or math.nan, 3)
        base = baseline(manifest, args.shape, args.seq_len, steps=10)
        steps = max(8, int(args.seconds * base / (16 * args.seq_len)))
        every = max(1, steps // 4)
        run = write(
            tmp, "run", shape=args.shape, seq_len=args.seq_len, vocab=4096, steps=steps,
            warmup=max(1, steps // 10), every=every, precision=precision,
        )  # fmt: skip
        out["processes"] = args.processes or default_processes()
        if launch(run, processes=args.processes, max_restarts=0) != 0:
            raise SystemExit("the training run failed")
        timed = [r for r in records(tmp / "run") if r["step"] > 3]
        tokens = 16 * args.seq_len
        wall = timed[-1]["time"] - (timed[0]["time"] - timed[0]["seconds"])
        out |= {
            "steps": steps,
            "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in timed)),
            "tokens_per_s_wall": round(len(timed) * tokens / wall),
            "baseline_tokens_per_s": round(base),
            "val_bits_per_byte": round(records(tmp / "run")[-1]["val_bits_per_byte"], 3),
        }
        if "mfu" in timed[-1]:
            out["mfu"] = round(statistics.median(r["mfu"] for r in timed), 3)
        if cuda:
            out["memory_gib"] = round(max(r["memory_gib"] for r in timed), 2)
        out["overhead"] = round(1 - out["tokens_per_s"] / base, 3)
        out["overhead_wall"] = round(1 - out["tokens_per_s_wall"] / base, 3)
        tiny = {"shape": "tiny", "seq_len": 64, "vocab": 4096, "steps": 8, "warmup": 2,
                "precision": precision}  # fmt: skip
        whole = write(tmp, "whole", every=3, **tiny)
        crashed = write(tmp, "crashed", every=3, **tiny)
        ranks = min(2, torch.cuda.device_count()) if cuda else 2  # a GPU a rank
        assert launch(whole, processes=ranks, max_restarts=0) == 0
        crash = {"LOOPLINE_LLM_CRASH": f"{ranks - 1}:5"}
        assert launch(crashed, processes=ranks, max_restarts=1, env=crash) == 0
        out["resume_exact"] = losses(tmp / "crashed") == losses(tmp / "whole")
    if args.json:
        print(json.dumps(out))
        return
    table = Table(title=f"LLM training ({device})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in out.items():
        if k != "benchmark":
            table.add_row(k, str(v))
    Console().print(table)


if __name__ == "__main__":
    main()
