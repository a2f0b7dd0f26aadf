"""The HTML evaluation report: metrics, PR and ROC curves, calibration, importances.

One self-contained file (figures inlined as SVG), readable offline.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from loopline.training.evaluation import Calibration, Operating


def svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _curves(y: npt.NDArray[np.integer], p: npt.NDArray[np.float64], op: Operating) -> str:
    fig, (pr, roc) = plt.subplots(1, 2, figsize=(10, 4))
    precision, recall, _ = precision_recall_curve(y, p)
    pr.plot(recall, precision, lw=1.5)
    pr.scatter([op.recall], [op.precision], color="crimson", zorder=3, label="operating point")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall (test)", ylim=(0, 1.02))
    pr.legend(loc="lower left")
    fpr, tpr, _ = roc_curve(y, p)
    roc.plot(fpr, tpr, lw=1.5)
    roc.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    return svg(fig)


def _calibration(cal: Calibration) -> str:
    fig, ax = plt.subplots(figsize=(5, 4))
    top = max([*cal.predicted, *cal.observed, 1e-6])
    ax.plot([0, top], [0, top], ls="--", color="grey", lw=0.8, label="perfect")
    ax.plot(cal.predicted, cal.observed, marker="o", label="model")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed positive rate",
        title=f"calibration (ECE {cal.ece:.4f}, Brier {cal.brier:.4f})",
    )
    ax.legend()
    return svg(fig)


def _importances(names: Sequence[str], gains: npt.NDArray[np.float64], top: int = 25) -> str:
    order = np.argsort(gains)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(order) + 1))
    ax.barh([names[i] for i in order], gains[order] / max(gains.sum(), 1e-12))
    ax.set(xlabel="share of total gain", title="feature importance (gain)")
    return svg(fig)


def write_report(
    path: Path,
    *,
    title: str,
    metrics: Mapping[str, object],
    y: npt.NDArray[np.integer],
    p: npt.NDArray[np.float64],
    operating: Operating,
    calibration: Calibration,
    feature_names: Sequence[str],
    gains: npt.NDArray[np.float64],
    notes: Sequence[str] = (),
) -> Path:
    """Write the report to ``path`` and return it."""
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in metrics.items()
    )
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td{{border-bottom:1px solid #ddd;padding:4px 12px}}
svg{{max-width:100%;height:auto}}</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>Metrics</h2><table>{rows}</table>
<ul>{items}</ul>
<h2>Curves</h2>{_curves(y, p, operating)}
<h2>Calibration</h2>{_calibration(calibration)}
<h2>Feature importance</h2>{_importances(feature_names, gains)}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
