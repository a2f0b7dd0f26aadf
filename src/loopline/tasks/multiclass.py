"""Multiclass tasks: one class per request out of several (a reviewer's verdict, a
content category).

Outputs carry the probability of each class under ``probabilities`` (class name ->
probability); a request's label is its true class with value 1 (``{"spam": 1.0}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopline.tasks.base import Arrays, LabelValues, Outputs, usable

EPS = 1e-15  # log loss clips probabilities here, as scikit-learn does


def _arrays(
    outputs: Sequence[Outputs], labels: Sequence[LabelValues], classes: Sequence[str], key: str
) -> Arrays:
    """Per request: usable (one true class among ``classes`` and probabilities), the true
    class index, and each class's probability."""
    index = {c: i for i, c in enumerate(classes)}
    n = len(outputs)
    ok, y, p = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64), np.zeros((n, len(classes)))
    for i, (out, lab) in enumerate(zip(outputs, labels, strict=True)):
        truth = [c for c, v in lab.items() if v >= 0.5 and c in index]
        probs = out.get(key)
        if len(truth) == 1 and probs:
            ok[i], y[i] = True, index[truth[0]]
            p[i] = [float(probs.get(c, 0.0)) for c in classes]
    return ok, y, p


def macro_f1(y: npt.NDArray[np.int64], predicted: npt.NDArray[np.int64], classes: int) -> float:
    """The unweighted mean of each class's F1 (classes never seen nor predicted: left out)."""
    scores = []
    for c in range(classes):
        tp = int(((predicted == c) & (y == c)).sum())
        fp = int(((predicted == c) & (y != c)).sum())
        fn = int(((predicted != c) & (y == c)).sum())
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


@dataclass(frozen=True)
class Accuracy:
    classes: tuple[str, ...]
    probabilities: str = "probabilities"
    name: str = "accuracy"

    def arrays(self, outputs: Sequence[Outputs], labels: Sequence[LabelValues]) -> Arrays:
        return _arrays(outputs, labels, self.classes, self.probabilities)

    def value(self, arrays: Arrays) -> float:
        y, p = usable(arrays)
        return float((p.argmax(axis=1) == y).mean()) if len(y) else float("nan")

    def support(self, arrays: Arrays) -> int:
        return int(arrays[0].sum())


@dataclass(frozen=True)
class MacroF1:
    classes: tuple[str, ...]
    probabilities: str = "probabilities"
    name: str = "macro_f1"

    def arrays(self, outputs: Sequence[Outputs], labels: Sequence[LabelValues]) -> Arrays:
        return _arrays(outputs, labels, self.classes, self.probabilities)

    def value(self, arrays: Arrays) -> float:
        y, p = usable(arrays)
        return macro_f1(y, p.argmax(axis=1), len(self.classes)) if len(y) else float("nan")

    def support(self, arrays: Arrays) -> int:
        return int(arrays[0].sum())


@dataclass(frozen=True)
class Multiclass:
    """A multiclass task over ``classes`` (headline: macro F1, which a majority class
    cannot game)."""

    classes: tuple[str, ...]
    probabilities: str = "probabilities"
    name: str = "multiclass"
    objective: str = "multiclass"

    @property
    def metric(self) -> MacroF1:
        return MacroF1(self.classes, self.probabilities)

    def report(self, outputs: Sequence[Outputs], labels: Sequence[LabelValues]) -> dict[str, float]:
        y, p = usable(_arrays(outputs, labels, self.classes, self.probabilities))
        if not len(y):
            return {"labelled": 0.0}
        picked = np.clip(p[np.arange(len(y)), y], EPS, 1.0)
        return {
            "labelled": float(len(y)),
            "accuracy": float((p.argmax(axis=1) == y).mean()),
            "macro_f1": macro_f1(y, p.argmax(axis=1), len(self.classes)),
            "log_loss": float(-np.log(picked).mean()),
        }
