"""``loopline demo llm-train``: a small model trained on Shakespeare with FSDP2 on this
machine's CPU, one rank killed mid-run and resumed by torchrun from the last checkpoint,
the model registered and the run reported.

The settings are written to ``OUT/settings.toml`` first: ``loopline train llm --config``
runs them again, without the injected crash.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopline.llm.pipeline import train_and_register
from loopline.registry import Registry

SETTINGS = """\
# written by `loopline demo llm-train`; `loopline train llm --config {path}` runs it again
[model]
name = "{name}"
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
min_lr_ratio = 0.1
precision = "{precision}"
activation_checkpointing = false
reshard_after_forward = false
checkpoint_every = {every}
eval_every = {every}
eval_batches = 8
out = "{out}"
"""


def run(
    out: Path,
    *,
    shape: str = "small",
    steps: int = 240,
    seq_len: int = 256,
    vocab_size: int = 4096,
    precision: str = "fp32",
    processes: int = 2,
    crash_after: int | None = None,
    registry: Registry | None = None,
    name: str = "shakespeare-small",
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train, crash rank 1 after ``crash_after`` (default: 55 % of the way) and survive
    it, register the model as ``name``; return the summary (``report``: the HTML)."""
    every = max(1, steps // 5)
    crash_after = crash_after if crash_after is not None else int(steps * 0.55)
    if not 0 < crash_after < steps:
        raise ValueError(f"crash_after must fall inside the run's {steps} steps.")
    shutil.rmtree(out / "run", ignore_errors=True)  # a fresh run, not a resumed one
    out.mkdir(parents=True, exist_ok=True)
    config = out / "settings.toml"
    config.write_text(
        SETTINGS.format(
            path=config, name=name, shape=shape, seq_len=seq_len, data=out / "shards",
            vocab=vocab_size, steps=steps, warmup=max(1, steps // 10), precision=precision,
            every=every, out=out / "run",
        )
    )  # fmt: skip
    say(
        f"Training {shape!r} on Shakespeare: {steps} steps on {processes} CPU processes "
        f"(FSDP2 on gloo), checkpoints every {every}; rank 1 will be killed after step "
        f"{crash_after} and torchrun will restart the group from the last checkpoint. The "
        "killed rank's peers report the lost connection below: that is the injected crash."
    )
    trained = train_and_register(
        config,
        registry=registry,
        processes=processes,
        max_restarts=1,
        env={"LOOPLINE_LLM_CRASH": f"1:{crash_after}"},
    )
    s = trained.summary
    say(
        f"Registered {name} version {trained.version}: held-out {s['val_bits_per_byte']:.3f} "
        f"bits per byte (the corpus's unigram entropy: {s['unigram_bits_per_byte']:.3f}), "
        f"{s['restarts']} restart(s) survived. Report: {trained.report}"
    )
    return s
