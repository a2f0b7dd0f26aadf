"""The quality report of ``loopline bench quality``: precision-recall curves on the test
period per lever and per fraud scenario, with the seed's operating point and the
operating points chosen on validation, and the figures as tables (one self-contained
HTML file, figures inlined as SVG)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from sklearn.metrics import precision_recall_curve

from loopline.training import svg

F64 = npt.NDArray[np.float64]
TARGET = (0.95, 0.99)  # the seed's operating point: recall, precision


def _levers_figure(
    y: npt.NDArray[np.integer], scores: Mapping[str, F64], points: Mapping[str, Any]
) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, zoom in zip(axes, (False, True), strict=True):
        for name, p in scores.items():
            precision, recall, _ = precision_recall_curve(y, p)
            ax.plot(recall, precision, lw=1.2, label=name)
        for name, (r, pr) in points.items():
            ax.scatter([r], [pr], marker="x", zorder=3, label=name)
        ax.scatter([TARGET[0]], [TARGET[1]], marker="*", s=150, color="crimson", zorder=4)
        ax.set(xlabel="recall", ylabel="precision", title="all frauds (test)")
        if zoom:
            ax.set(xlim=(0.4, 1.0), ylim=(0.9, 1.002), title="zoom: precision >= 0.9")
    axes[0].legend(loc="lower left", fontsize=7)
    return svg(fig)


def _scenarios_figure(
    y: npt.NDArray[np.integer], scenarios: npt.NDArray[np.str_], scores: Mapping[str, F64]
) -> str:
    names = sorted(set(scenarios[y == 1].tolist()))
    cols = 3
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(13, 3.8 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        own = (scenarios == name) | (y == 0)
        for lever, p in scores.items():
            precision, recall, _ = precision_recall_curve(y[own], p[own])
            ax.plot(recall, precision, lw=1.1, label=lever)
        ax.scatter([TARGET[0]], [TARGET[1]], marker="*", s=120, color="crimson", zorder=4)
        n = int(((scenarios == name) & (y == 1)).sum())
        ax.set(title=f"{name} ({n} frauds) vs all genuine", xlabel="recall", ylabel="precision")
        ax.set_ylim(0, 1.02)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    axes[0, 0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    return svg(fig)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r.values()) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write(
    path: Path,
    *,
    y: npt.NDArray[np.integer],
    scenarios: npt.NDArray[np.str_],
    scores: Mapping[str, F64],
    points: Mapping[str, tuple[float, float]],
    lever_rows: list[dict[str, Any]],
    scenario_rows: list[dict[str, Any]],
    evidence_rows: list[dict[str, Any]],
    notes: list[str],
) -> Path:
    """Write the report: ``scores`` are each lever's test scores, ``points`` operating
    points chosen on validation as (recall, precision) on test, ``evidence_rows`` what
    each scenario's frauds had in label evidence when scored."""
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fraud quality</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1300px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:90%}}
td,th{{border-bottom:1px solid #ddd;padding:3px 10px}}
svg{{max-width:100%;height:auto}}</style></head><body>
<h1>Fraud quality at the seed's operating point (precision 0.99, recall 0.95)</h1>
<ul>{items}</ul>
<h2>Levers (test period)</h2>{_table(lever_rows)}
{_levers_figure(y, scores, points)}
<h2>Scenarios (test period: own curve, each against all genuine traffic; recall at
the global thresholds)</h2>{_table(scenario_rows)}
{_scenarios_figure(y, scenarios, scores)}
<h2>Label evidence when scored (test frauds: a fraud label of their terminal or card had
arrived in the 30 days before)</h2>{_table(evidence_rows)}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
