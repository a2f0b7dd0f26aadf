"""Thresholds per segment of traffic, chosen together for one overall target.

One threshold for all traffic spends its false positives where scores are least
informative. Given a *validation* period's labels, scores and each row's segment (a
channel, an amount band, a country), :class:`SegmentThresholds` chooses one threshold per
segment so that the rows flagged together reach a precision target with the most recall,
or a recall target with the fewest false positives. The thresholds are then applied
unchanged to later rows: nothing of the period they are judged on is used.

How: each segment's scores are calibrated by isotonic regression (the precision of each
step of its own ranking, best step first); the steps of all segments are then taken in
decreasing order of that precision until the overall target stops holding. Taking steps
in that order keeps the cumulative precision as high as it can be for each recall, so
the cut is the optimum of the problem (up to a step taken whole). A segment's threshold
is the lowest validation score of its rows above the cut.

Example:
    >>> import numpy as np
    >>> y = np.array([1, 0, 1, 0, 0, 1])
    >>> p = np.array([0.9, 0.8, 0.3, 0.2, 0.9, 0.95])
    >>> seg = np.array(["a", "a", "b", "b", "c", "c"])
    >>> chooser = SegmentThresholds(precision=1.0)
    >>> chooser.fit(y, p, seg)
    >>> {k: round(v, 2) for k, v in sorted(chooser.thresholds_.items())}
    {'a': 0.9, 'b': 0.3, 'c': 0.95}
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError

F64 = npt.NDArray[np.float64]


def threshold_for_recall(y: npt.NDArray[np.integer], p: F64, target: float) -> float:
    """The highest threshold whose recall on (``y``, ``p``) reaches ``target``: the
    ``ceil(target x positives)``-th highest positive score (flagging ``p >= it``)."""
    positives = np.sort(p[y == 1])[::-1]
    if not len(positives):
        return math.inf
    k = max(1, math.ceil(target * len(positives) - 1e-9))
    return float(positives[k - 1])


class SegmentThresholds:
    """A threshold per segment, chosen on validation rows for an overall target.

    Args:
        precision: Flag the most positives while the flagged rows' precision stays at or
            above this (0 < precision <= 1).
        recall: Or: flag the fewest rows that reach this recall (0 < recall <= 1).

    Learned: ``thresholds_`` (segment -> score threshold; ``inf`` flags nothing),
    ``default_`` (the threshold of a segment not seen in validation: one threshold chosen
    the same way over all validation rows), ``cut_`` (the calibrated precision at which
    the steps stopped).
    """

    def __init__(self, *, precision: float | None = None, recall: float | None = None) -> None:
        if (precision is None) == (recall is None):
            raise ConfigError(
                "SegmentThresholds takes one target, precision= or recall=; "
                f"got precision={precision!r}, recall={recall!r}."
            )
        target = precision if precision is not None else recall
        if target is None or not 0 < target <= 1:
            raise ConfigError(f"SegmentThresholds target must be in (0, 1]; got {target!r}.")
        self.precision = precision
        self.recall = recall

    def fit(self, y: npt.ArrayLike, p: npt.ArrayLike, segments: npt.ArrayLike) -> None:
        """Choose the thresholds on these (validation) rows."""
        y_ = np.asarray(y, dtype=np.int8)
        p_ = np.asarray(p, dtype=np.float64)
        seg = np.asarray(segments)
        if not (len(y_) == len(p_) == len(seg)) or not y_.sum():
            raise ConfigError(
                "SegmentThresholds.fit needs y, p and segments of one length with at least "
                f"one positive; got lengths {len(y_)}, {len(p_)}, {len(seg)} and "
                f"{int(y_.sum())} positives."
            )
        names, inverse = np.unique(seg, return_inverse=True)
        q = np.empty(len(p_))
        for i in range(len(names)):
            rows = inverse == i
            q[rows] = _isotonic(p_[rows], y_[rows])
        self.cut_ = self._cut(y_, q)
        self.thresholds_: dict[Any, float] = {}
        for i, name in enumerate(names.tolist()):
            above = (inverse == i) & (q >= self.cut_)
            self.thresholds_[name] = float(p_[above].min()) if above.any() else math.inf
        whole = _isotonic(p_, y_)
        above = whole >= self._cut(y_, whole)
        self.default_ = float(p_[above].min()) if above.any() else math.inf

    def flag(self, p: npt.ArrayLike, segments: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Whether each row's score reaches its segment's threshold."""
        return np.asarray(p, dtype=np.float64) >= self.threshold_of(segments)

    def threshold_of(self, segments: npt.ArrayLike) -> F64:
        """Each row's threshold (``default_`` for a segment not seen in validation)."""
        seg = np.asarray(segments)
        names, inverse = np.unique(seg, return_inverse=True)
        per = np.array([self.thresholds_.get(n, self.default_) for n in names.tolist()])
        return per[inverse] if len(seg) else np.zeros(0)

    def _cut(self, y: npt.NDArray[np.int8], q: F64) -> float:
        """The calibrated precision down to which steps are taken."""
        order = np.argsort(-q, kind="mergesort")
        qs, tps = q[order], np.cumsum(y[order])
        ends = np.r_[np.flatnonzero(np.diff(qs)), len(qs) - 1]  # whole steps only
        tp, n = tps[ends], ends + 1
        if self.precision is not None:
            ok = np.flatnonzero(tp / n >= self.precision - 1e-12)
            return float(qs[ends[ok[-1]]]) if len(ok) else math.inf
        assert self.recall is not None
        ok = np.flatnonzero(tp >= self.recall * tps[-1] - 1e-9)
        return float(qs[ends[ok[0]]])


def _isotonic(p: F64, y: npt.NDArray[np.int8]) -> F64:
    """The precision of each row's step: isotonic regression of ``y`` on ``p``, tied
    scores sharing one value (pool-adjacent-violators over runs of equal scores)."""
    order = np.argsort(p, kind="mergesort")
    ps, ys = p[order], y[order].astype(np.float64)
    starts = np.r_[0, np.flatnonzero(np.diff(ps)) + 1]
    sums = np.add.reduceat(ys, starts)
    counts = np.diff(np.r_[starts, len(ps)]).astype(np.float64)
    fitted = _pool(sums, counts)
    out = np.empty(len(p))
    out[order] = np.repeat(fitted, counts.astype(np.int64))
    return out


def _pool(sums: F64, counts: F64) -> F64:
    """Pool adjacent violators: one non-decreasing value per run, each the mean of the
    block of runs it was pooled into."""
    s: list[float] = []
    c: list[float] = []
    runs: list[int] = []
    for a, b in zip(sums.tolist(), counts.tolist(), strict=True):
        s.append(a)
        c.append(b)
        runs.append(1)
        while len(s) > 1 and s[-2] / c[-2] >= s[-1] / c[-1]:
            last_s, last_c, last_runs = s.pop(), c.pop(), runs.pop()
            s[-1] += last_s
            c[-1] += last_c
            runs[-1] += last_runs
    return np.repeat(np.array(s) / np.array(c), runs) if s else np.zeros(0)
