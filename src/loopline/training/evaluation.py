"""Evaluation of a binary scorer: ranking quality, an operating threshold, precision
at k per entity and per day, and calibration.

Every function takes labels ``y`` (0/1) and scores ``p`` (higher = more likely
positive) as NumPy arrays. Average precision is :func:`loopline.tasks.average_precision`,
the one the feedback loop and the promotion gate use too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import precision_recall_curve, roc_auc_score

from loopline.tasks import average_precision

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Operating:
    """What a threshold does: scores at or above it are flagged."""

    threshold: float
    precision: float
    recall: float


@dataclass(frozen=True)
class Calibration:
    """Reliability of the scores as probabilities: equal-count bins of predicted vs
    observed positive rate, the expected calibration error and the Brier score."""

    predicted: list[float]
    observed: list[float]
    counts: list[int]
    ece: float
    brier: float


def ranking(y: npt.NDArray[np.integer], p: F64) -> dict[str, float]:
    """ROC-AUC, average precision, recall at precision >= 0.99, precision at recall >= 0.95."""
    precision, recall, _ = precision_recall_curve(y, p)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "average_precision": average_precision(y, p),
        "recall_at_precision_99": float(recall[precision >= 0.99].max(initial=0.0)),
        "precision_at_recall_95": float(precision[recall >= 0.95].max(initial=0.0)),
    }


def threshold_for_precision(y: npt.NDArray[np.integer], p: F64, target: float) -> Operating:
    """The lowest threshold whose precision on (``y``, ``p``) reaches ``target`` (most
    recall at that precision); the highest score if none does."""
    precision, recall, thresholds = precision_recall_curve(y, p)
    ok = np.flatnonzero(precision[:-1] >= target)
    i = int(ok[0]) if len(ok) else len(thresholds) - 1
    return Operating(float(thresholds[i]), float(precision[i]), float(recall[i]))


def at_threshold(y: npt.NDArray[np.integer], p: F64, threshold: float) -> Operating:
    """Precision and recall of flagging ``p >= threshold``."""
    flagged = p >= threshold
    tp = int((flagged & (y == 1)).sum())
    return Operating(
        threshold,
        tp / max(1, int(flagged.sum())),
        tp / max(1, int((y == 1).sum())),
    )


def entity_precision_at_k(
    days: npt.NDArray[np.integer],
    entities: npt.NDArray[np.generic],
    y: npt.NDArray[np.integer],
    p: F64,
    k: int = 100,
) -> float:
    """Precision@k by entity and day (the fraud handbook's Card Precision@k when the
    entities are cards): each day, rank entities by their highest score that day; the
    share of the top ``k`` that had a positive that day; averaged over days. An entity
    found positive on one day is left out of the later days (its case is open).
    """
    found: set[object] = set()
    per_day = []
    for day in np.unique(days):
        today = (days == day) & ~np.isin(entities, np.array(list(found), dtype=entities.dtype))
        if not today.any():
            continue
        names, inverse = np.unique(entities[today], return_inverse=True)
        best = np.full(len(names), -np.inf)
        np.maximum.at(best, inverse, p[today])
        positive = np.zeros(len(names), dtype=bool)
        np.logical_or.at(positive, inverse, y[today] == 1)
        top = np.argsort(-best, kind="stable")[:k]
        per_day.append(float(positive[top].sum()) / k)
        found.update(names[top][positive[top]].tolist())
    return float(np.mean(per_day)) if per_day else float("nan")


def calibration(y: npt.NDArray[np.integer], p: F64, bins: int = 10) -> Calibration:
    """Equal-count bins (a rare positive class would leave equal-width bins nearly all
    empty)."""
    order = np.argsort(p, kind="stable")
    chunks = [c for c in np.array_split(order, bins) if len(c)]
    predicted = [float(p[c].mean()) for c in chunks]
    observed = [float(y[c].mean()) for c in chunks]
    counts = [len(c) for c in chunks]
    ece = float(
        sum(n * abs(a - b) for n, a, b in zip(counts, predicted, observed, strict=True)) / len(p)
    )
    return Calibration(predicted, observed, counts, ece, float(np.mean((p - y) ** 2)))


def as_dict(value: Operating | Calibration) -> dict[str, object]:
    return asdict(value)
