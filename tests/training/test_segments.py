"""Per-segment thresholds: chosen on validation rows for one overall target, applied
unchanged to later rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopline.exceptions import ConfigError
from loopline.training.segments import SegmentThresholds, threshold_for_recall


def test_thresholds_by_hand() -> None:
    # segment a: a clean ranking; b: the positive is scored below a negative
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.6, 0.5, 0.4, 0.3])
    seg = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
    chooser = SegmentThresholds(precision=1.0)
    chooser.fit(y, p, seg)
    # a: 0.9 and 0.8 are pure; b: only 0.6 is (0.5 > 0.4 pools 0.5 and 0.4 at 1/2)
    assert chooser.thresholds_ == {"a": 0.8, "b": 0.6}
    assert chooser.cut_ == 1.0
    # one global threshold at precision 1 could only take the top two rows
    assert chooser.default_ == 0.8
    flagged = chooser.flag(p, seg)
    assert flagged.tolist() == [True, True, False, False, True, False, False, False]
    # a segment not seen in validation gets the global threshold
    assert chooser.flag(np.array([0.85, 0.7]), np.array(["new", "new"])).tolist() == [True, False]


def test_recall_target_takes_the_best_steps_first() -> None:
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.6, 0.5, 0.4, 0.3])
    seg = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
    chooser = SegmentThresholds(recall=0.75)
    chooser.fit(y, p, seg)
    # 3 of 4 positives: a's two pure rows and b's 0.6, no false positive
    assert chooser.thresholds_ == {"a": 0.8, "b": 0.6}
    chooser = SegmentThresholds(recall=1.0)
    chooser.fit(y, p, seg)
    assert chooser.thresholds_ == {"a": 0.8, "b": 0.4}  # b's pooled step (0.5, 0.4) too


def test_thresholds_come_from_validation_only() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    seg = rng.choice(np.array(["x", "y", "z"]), n)
    y = (rng.random(n) < 0.05).astype(np.int8)
    p = np.clip(0.3 * y + rng.normal(0.3, 0.15, n) + (seg == "z") * 0.2, 0, 1)
    val, test = np.arange(n) < n // 2, np.arange(n) >= n // 2
    chooser = SegmentThresholds(precision=0.8)
    chooser.fit(y[val], p[val], seg[val])
    chosen = dict(chooser.thresholds_)
    # later rows are flagged by the validation thresholds as they stand
    assert (chooser.flag(p[test], seg[test]) == (p[test] >= chooser.threshold_of(seg[test]))).all()
    # every threshold is a validation score of its segment
    for name, t in chosen.items():
        assert math.isinf(t) or t in set(p[val][seg[val] == name].tolist())
    # the validation precision reaches the target; z (scores shifted up) needs a higher one
    flagged = chooser.flag(p[val], seg[val])
    assert y[val][flagged].mean() >= 0.8
    assert chosen["z"] > max(chosen["x"], chosen["y"])


def test_threshold_for_recall() -> None:
    y = np.array([1, 0, 1, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    assert threshold_for_recall(y, p, 0.5) == 0.7  # 2 of 3
    assert threshold_for_recall(y, p, 1.0) == 0.2
    assert math.isinf(threshold_for_recall(np.zeros(3, dtype=int), p[:3], 0.5))


def test_targets_are_checked() -> None:
    with pytest.raises(ConfigError, match="one target"):
        SegmentThresholds(precision=0.9, recall=0.9)
    with pytest.raises(ConfigError, match=r"in \(0, 1\]"):
        SegmentThresholds(precision=1.5)
