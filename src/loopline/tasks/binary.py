"""Binary tasks: a score per request, a 0/1 outcome (fraud or not, clicked or not)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopline.tasks.base import Arrays, LabelValues, Outputs, usable

F64 = npt.NDArray[np.float64]


def average_precision(y: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Average precision: the mean, over the positives, of the precision at their score.

    Tied scores share one threshold, as in scikit-learn's ``average_precision_score``
    (which it equals): precision and recall are taken after the last row of each run of
    equal scores. NaN when there is no positive.
    """
    y_ = np.asarray(y, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    positives = y_.sum()
    if len(y_) == 0 or positives == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y_ = s[order], y_[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last row of each score run
    tps = np.cumsum(y_)[ends]
    precision = tps / (ends + 1)
    recall_gain = np.diff(np.r_[0.0, tps]) / positives
    return float((recall_gain * precision).sum())


@dataclass(frozen=True)
class AveragePrecision:
    """Average precision of the output ``score`` against the label of subject
    ``subject``; rows whose score is missing (no model answered) are left out."""

    score: str = "score"
    subject: str = ""
    name: str = "average_precision"

    def arrays(self, outputs: Sequence[Outputs], labels: Sequence[LabelValues]) -> Arrays:
        n = len(outputs)
        ok, y, s = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int8), np.zeros(n)
        for i, (out, lab) in enumerate(zip(outputs, labels, strict=True)):
            score, value = out.get(self.score), lab.get(self.subject)
            if score is not None and value is not None:
                ok[i], y[i], s[i] = True, value >= 0.5, score
        return ok, y, s

    def value(self, arrays: Arrays) -> float:
        y, s = usable(arrays)
        return average_precision(y, s)

    def support(self, arrays: Arrays) -> int:
        return int(arrays[1][arrays[0]].sum())


@dataclass(frozen=True)
class Binary:
    """A binary task: outputs carry ``score``; ``flagged(outputs)`` says whether the
    answer acted on it (for the precision and recall of what was flagged; None: a
    score at or above 0.5)."""

    score: str = "score"
    flagged: Callable[[Mapping[str, object]], bool] | None = None
    name: str = "binary"
    objective: str = "binary"

    @property
    def metric(self) -> AveragePrecision:
        return AveragePrecision(score=self.score)

    def report(self, outputs: Sequence[Outputs], labels: Sequence[LabelValues]) -> dict[str, float]:
        """Positives, precision and recall of the flagged answers, average precision."""
        known = [(o, lab) for o, lab in zip(outputs, labels, strict=True) if "" in lab]
        y = np.array([lab[""] >= 0.5 for _, lab in known], dtype=bool)
        flagged = np.array([self._flagged(o) for o, _ in known], dtype=bool)
        tp = int((flagged & y).sum())
        ap = self.metric
        return {
            "positives": float(y.sum()),
            "precision": tp / max(1, int(flagged.sum())),
            "recall": tp / max(1, int(y.sum())),
            ap.name: ap.value(ap.arrays([o for o, _ in known], [lab for _, lab in known])),
        }

    def _flagged(self, outputs: Outputs) -> bool:
        if self.flagged is not None:
            return self.flagged(outputs)
        score = outputs.get(self.score)
        return score is not None and float(score) >= 0.5
