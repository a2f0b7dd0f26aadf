"""The recommendation demo's HTML report: one self-contained file, figures inlined."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from loopline.training import svg


def write(path: Path, result: dict[str, Any], latency_ms: Sequence[float]) -> Path:
    q = result["quality"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    names = ["candidate_recall", "ndcg_at_10", "recall_at_20"]
    for shift, version in ((-0.2, "v1"), (0.2, "v2")):
        axes[0].bar([i + shift for i in range(3)], [q[version][n] for n in names], 0.4,
                    label=version)  # fmt: skip
    axes[0].set_xticks(range(3), ["retrieval recall", "NDCG@10", "recall@20"])
    axes[0].set_title("quality by stage (newer 30 %)")
    axes[0].legend()
    ab = result["ab"]
    means = [ab["mean_control"], ab["mean_treatment"]]
    half = [(ab["difference_ci"][1] - ab["difference_ci"][0]) / 2] * 2
    axes[1].bar(["v1 (control)", "v2 (treatment)"], means, yerr=half, capsize=6)
    axes[1].set_title(f"A/B per-user CTR, p = {ab['p_value']:.3g}")
    ex = result["exploration"]
    for name in ("with", "without"):
        axes[2].plot(ex[name]["ctr_by_block"], marker="o", label=f"{name} exploration")
    axes[2].set_title("CTR over the long run")
    axes[2].set_xlabel("fifth of the run")
    axes[2].legend()
    charts = svg(fig)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(latency_ms, bins=50)
    ax.set_xlabel("ms per request (retrieval, ranking, re-ranking; in process)")
    ax.set_title("latency")
    latency = svg(fig)
    rows = "".join(
        f"<tr><td>{html.escape(v)}</td>" + "".join(f"<td>{q[v][k]}</td>" for k in q["v1"]) + "</tr>"
        for v in q
    )
    head = "".join(f"<th>{html.escape(k)}</th>" for k in q["v1"])
    body = f"""<!doctype html><meta charset="utf-8"><title>loopline recs demo</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:2px 8px}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f3f3f3}}</style>
<h1>Recommendations: the loop on MovieLens-100K</h1>
<p>Clicks come from a <b>simulator</b> (a preference model fitted on the data, with position
bias), not from people. Promoted: <b>{result["promoted"]}</b> (offline gate:
{result["gate_offline"]}; A/B winner: {ab["winner"]}; interleaving winner:
{result["interleaving"]["winner"]}, delta {result["interleaving"]["delta"]:.3f},
p = {result["interleaving"]["p_value"]:.3g}).</p>
{charts}
<h2>Quality, coverage and diversity by version</h2>
<table><tr><th>version</th>{head}</tr>{rows}</table>
<h2>Exploration</h2><pre>{html.escape(json.dumps(result["exploration"], indent=1))}</pre>
<h2>Latency</h2>{latency}
<h2>All figures</h2><pre>{html.escape(json.dumps(result, indent=1, default=str))}</pre>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path
