"""What ``loopline simulate capacity`` shows: an HTML report (per scenario, latency
p50 / p99 over time, the scorers up, and what was shed, lost or answered from the
rules alone, per 5 s), and the answers as a table in the terminal."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from loopline.capacity import Result
from loopline.training import svg

TITLES = {
    "steady": "(a) 100K TPS steady",
    "spike": "(b) a 10x spike, reactive autoscaling",
    "spike_prescaled": "(b') the same spike, the scorers scaled ahead of it",
    "region_loss": "(c) one region lost, its traffic moved to the others",
    "shard_loss": "(d) one Redis shard lost until its replica is promoted",
}


def _figure(name: str, r: Result, fraction: float) -> str:
    t = np.arange(len(r.servers_t)) * r.bucket_s
    fig, (lat, load) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    lat.plot(t, r.series_ms(0.5), label="p50")
    lat.plot(t, r.series_ms(0.99), label="p99")
    lat.set(ylabel="decision latency (ms)", yscale="log", title=TITLES.get(name, name))
    lat.legend(loc="upper right")
    per_s = r.events_t / r.bucket_s / fraction
    load.plot(t, per_s[:, 0], label="arrived/s", color="tab:gray")
    load.plot(t, per_s[:, 3], label="shed or lost/s", color="tab:red")
    load.plot(t, per_s[:, 2], label="rules-only/s", color="tab:orange")
    load.set(xlabel="simulated seconds", ylabel="transactions/s")
    up = load.twinx()
    up.plot(t, r.servers_t / fraction, color="tab:green", lw=1, ls="--", label="scorers up")
    up.set(ylabel="scorers up")
    load.legend(loc="upper left", fontsize=8)
    up.legend(loc="upper right", fontsize=8)
    return svg(fig)


def write(
    path: Path, answers: dict[str, Any], results: dict[str, Result], share: dict[str, float]
) -> None:
    figures = "\n".join(
        f"<h2>{html.escape(TITLES.get(k, k))}</h2>{_figure(k, r, share[k])}"
        for k, r in results.items()
    )
    body = html.escape(json.dumps(answers, indent=2))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>loopline: capacity simulation</title>"
        "<body style='font-family:sans-serif;max-width:1000px;margin:auto'>"
        "<h1>The 100K TPS plan, simulated</h1><p>A discrete-event simulation driven by "
        "service times measured with <code>loopline bench scale</code>; not a "
        "measurement. Its assumptions are listed below with its answers.</p>"
        f"{figures}<h2>Answers and assumptions</h2><pre>{body}</pre></body>"
    )


def show(answers: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="loopline simulate capacity (a simulation, from measured service times)")
    table.add_column("answer")
    table.add_column("value")
    for key, value in answers.items():
        if key == "assumptions":
            continue
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else json.dumps(value))
    Console(width=200).print(table)
