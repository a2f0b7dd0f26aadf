"""Retraining from reviewers' verdicts: the prediction log keeps each answer's fusion inputs
(what every source said, never the content), and the feedback stage joins the verdicts to
them as labels. From those rows the combiner is refitted and the operating threshold chosen
again.

Reviewed items are not a random sample (they are the uncertain ones), so the refit is
gated: it is fitted on half of the labelled rows and kept only if its log loss on the other
half beats the current combiner's; then it is refitted on all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.apps.moderation.cascade import Cascade
from loopline.apps.moderation.evaluate import best_threshold
from loopline.apps.moderation.fusion import Combiner
from loopline.apps.moderation.taxonomy import LABELS
from loopline.predictions import Log

F32 = npt.NDArray[np.float32]
MIN_LABELS = 40


@dataclass(frozen=True)
class Recalibrated:
    cascade: Cascade
    threshold: float
    combiner: Combiner | None  # None: the current one was kept
    labels: int
    loss_before: float | None
    loss_after: float | None
    threshold_before: float

    def figures(self) -> dict[str, Any]:
        return {
            "verdict labels used": self.labels,
            "held-out log loss, current combiner": self.loss_before,
            "held-out log loss, refitted": self.loss_after,
            "refit kept": self.combiner is not None,
            "threshold before": self.threshold_before,
            "threshold after": self.threshold,
        }


def labelled_rows(log: Log, model_version: str) -> tuple[list[F32], list[str]]:
    """The fusion inputs and verdict of every item ``model_version`` answered that a
    reviewer labelled (another version's inputs come from other classifiers)."""
    joined = log.joined(model_version=model_version)
    x, y = [], []
    for outputs, labels in zip(joined.outputs, joined.labels, strict=True):
        fusion = outputs.get("fusion")
        truth = [s for s, v in labels.items() if v >= 1.0]
        if fusion and len(truth) == 1:
            x.append(np.asarray(fusion, np.float32))
            y.append(truth[0])
    return x, y


def _loss(combiner: Combiner, x: list[F32], y: list[str]) -> float:
    """The log loss of the verdicts' labels under the combiner's probabilities."""
    p = combiner.probabilities(np.stack(x))[np.arange(len(y)), [LABELS.index(v) for v in y]]
    return round(float(-np.mean(np.log(np.clip(p, 1e-6, 1.0)))), 4)


def recalibrate(
    log: Log, cascade: Cascade, threshold: float, model_version: str, *, seed: int = 0
) -> Recalibrated:
    """Refit the combiner and choose the threshold again from ``model_version``'s labelled
    answers, kept only if better on held-out verdicts (the threshold is chosen on them)."""
    x, y = labelled_rows(log, model_version)
    keep = Recalibrated(cascade, threshold, None, len(y), None, None, threshold)
    if len(y) < MIN_LABELS or len(set(y)) < 2:
        return keep
    order = np.random.default_rng(seed).permutation(len(y))
    fit, held = order[: len(y) // 2], order[len(y) // 2 :]
    trial = Combiner.fit([x[i] for i in fit], [y[i] for i in fit])
    before = _loss(cascade.combiner, [x[i] for i in held], [y[i] for i in held])
    after = _loss(trial, [x[i] for i in held], [y[i] for i in held])
    if after >= before:
        return replace(keep, loss_before=before, loss_after=after)
    fused = 1.0 - trial.probabilities(np.stack([x[i] for i in held]))[:, LABELS.index("benign")]
    new_threshold = best_threshold(fused, np.array([y[i] != "benign" for i in held]))
    combiner = Combiner.fit(x, y)
    return Recalibrated(replace(cascade, combiner=combiner), new_threshold, combiner, len(y),
                        before, after, threshold)  # fmt: skip
