"""A training run's HTML report: loss and validation curves, bits per byte against the
corpus's unigram entropy, learning rate, gradient norm, throughput (and MFU and memory
on a GPU), with each crash and resume marked. One self-contained file, figures inlined.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from loopline.reports import table, write_page
from loopline.training import svg


@dataclass(frozen=True)
class Restart:
    """The run stopped after ``lost_after`` (the last step logged) and went on from the
    checkpoint at ``resumed_at``, with ``world`` ranks."""

    lost_after: int
    resumed_at: int
    world: int


@dataclass(frozen=True)
class RunLog:
    """A run's ``metrics.jsonl``: each step's record (the last logged), the restarts,
    and the steps logged again after a resume (``replayed``), of which ``identical``
    had the very same loss as before the crash."""

    steps: dict[int, dict[str, float]]
    restarts: list[Restart]
    replayed: int
    identical: int


def read_log(path: Path) -> RunLog:
    steps: dict[int, dict[str, float]] = {}
    restarts: list[Restart] = []
    last = replayed = identical = 0
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "resumed":
            restarts.append(Restart(last, int(record["step"]), int(record["world"])))
        elif "loss" in record:
            last = int(record["step"])
            if last in steps:
                replayed += 1
                identical += steps[last]["loss"] == record["loss"]
            steps[last] = record
    return RunLog(steps, restarts, replayed, identical)


def _series(steps: Mapping[int, Mapping[str, float]], key: str) -> tuple[list[int], list[float]]:
    points = [(s, r[key]) for s, r in sorted(steps.items()) if key in r]
    return [p[0] for p in points], [p[1] for p in points]


def _figures(
    steps: Mapping[int, Mapping[str, float]], restarts: Sequence[Restart], unigram: float
) -> str:
    panels = [("loss", "loss (nats/token)"), ("val_bits_per_byte", "validation bits per byte"),
              ("lr", "learning rate"), ("grad_norm", "gradient norm (before clipping)"),
              ("tokens_per_s", "tokens/s")]  # fmt: skip
    panels += [(k, t) for k, t in (("mfu", "MFU"), ("memory_gib", "peak memory, GiB (CPU: RSS)"))
               if any(k in r for r in steps.values())]  # fmt: skip
    cols = 2
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3.2 * rows), squeeze=False)
    for ax, (key, title) in zip(axes.flat, panels, strict=False):
        x, y = _series(steps, key)
        held = key.startswith("val")
        ax.plot(x, y, lw=1.2, marker="o" if held else None, ms=3,
                label="validation" if held else "train")  # fmt: skip
        if key == "loss":
            vx, vy = _series(steps, "val_loss")
            ax.plot(vx, vy, marker="o", ms=3, label="validation")
            ax.legend()
        if key == "val_bits_per_byte":
            ax.axhline(unigram, ls="--", color="grey", lw=0.8, label="unigram entropy")
            ax.legend()
        for r in restarts:
            ax.axvline(r.lost_after, color="crimson", lw=0.8, ls=":")
            ax.axvline(r.resumed_at, color="crimson", lw=0.8)
        ax.set(title=title, xlabel="step")
    for ax in list(axes.flat)[len(panels) :]:
        ax.remove()
    fig.tight_layout()
    return svg(fig)


def write(
    path: Path,
    *,
    title: str,
    log: Path,
    summary: Mapping[str, Any],
    unigram_bits_per_byte: float,
    notes: Sequence[str] = (),
) -> Path:
    """Write the report of the run whose ``metrics.jsonl`` is ``log``; return ``path``."""
    run = read_log(log)
    marks = [
        f"stopped after step {r.lost_after} (dotted), resumed from the checkpoint of step "
        f"{r.resumed_at} on {r.world} ranks (solid)"
        for r in run.restarts
    ]
    return write_page(
        path, title=title, summary=summary, notes=notes,
        sections=[
            ("Restarts", table([[m] for m in marks] or [["none"]])),
            ("Curves", _figures(run.steps, run.restarts, unigram_bits_per_byte)),
        ],
    )  # fmt: skip
