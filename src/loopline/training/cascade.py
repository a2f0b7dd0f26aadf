"""A two-stage scorer: a second model trained on the first one's uncertain band.

Most rows are easy: far below any threshold, or far above it. A second model can spend
its capacity where the first one hesitates. :class:`TwoStage` fits the first stage on
all rows, scores every row *out of fold* (each fold by a first stage fitted without it,
so band membership is what an unseen row would get), and sets the band from those
scores: from the score above which ``band_recall`` of the positives lie, up to the
lowest score whose precision reaches ``sure_precision`` (rows above it are already
flagged with confidence). The second stage is fitted on the band's rows only, with the
first stage's score as one more feature.

Scores compose by rank: a row below the band keeps its first-stage score (in [0, 1]), a
row in the band gets 1 + the second stage's score, a row above it 2 + the first stage's,
so that every band row ranks above every row below the band and below every row above it.

Example:
    >>> import numpy as np
    >>> class Column:  # a "model" that scores by one feature
    ...     def predict(self, x):
    ...         return x[:, 0]
    >>> x = np.linspace(0, 1, 12).reshape(-1, 1)
    >>> y = np.array([0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 1])
    >>> model = TwoStage(fit=lambda x, y: Column(), folds=3, band_recall=1.0, sure_precision=1.0)
    >>> model.fit(x, y)
    >>> int(model.band_.sum())  # from the lowest positive (row 5) to the first sure row (9)
    4
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError

F64 = npt.NDArray[np.float64]


class Scorer(Protocol):
    """What a fitted stage is: scores rows (higher: more likely positive)."""

    def predict(self, x: F64) -> npt.ArrayLike: ...


Fit = Callable[[F64, npt.NDArray[np.int8]], Scorer]


class TwoStage:
    """A first-stage model and a second one for its uncertain band.

    Args:
        fit: Fits one stage on rows ``x`` and labels ``y`` (0/1) and returns a scorer; the
            first stage, its out-of-fold copies and the second stage all come from it.
        folds: Out-of-fold scoring: the rows are cut into this many consecutive blocks
            (rows in time order: blocks of time), unless ``fit`` is given ``fold`` ids.
        band_recall: The band starts at the score above which this share of the positives
            lie (out of fold).
        sure_precision: The band ends at the lowest score whose precision (out of fold)
            reaches this; none does: the band has no upper end.

    Learned: ``first_``, ``second_``, ``low_``, ``high_`` (the band's scores, of the
    first stage), ``band_`` (which training rows the second stage was fitted on),
    ``oof_`` (the first stage's out-of-fold scores of the training rows; they do not
    depend on the band, so other band settings can reuse them: ``fit(..., oof=...)``).
    """

    def __init__(
        self,
        *,
        fit: Fit,
        folds: int = 3,
        band_recall: float = 0.98,
        sure_precision: float = 0.99,
    ) -> None:
        if folds < 2:
            raise ConfigError(f"TwoStage folds must be at least 2; got {folds}.")
        for name, value in (("band_recall", band_recall), ("sure_precision", sure_precision)):
            if not 0 < value <= 1:
                raise ConfigError(f"TwoStage {name} must be in (0, 1]; got {value!r}.")
        self.fit_stage = fit
        self.folds = folds
        self.band_recall = band_recall
        self.sure_precision = sure_precision

    def fit(
        self,
        x: F64,
        y: npt.ArrayLike,
        *,
        fold: npt.NDArray[np.integer] | None = None,
        first: Scorer | None = None,
        oof: F64 | None = None,
    ) -> None:
        """Fit both stages on (time-ordered) rows ``x`` with labels ``y``.

        ``fold``: each row's fold id (default: ``folds`` consecutive blocks); ``first``:
        the first stage if it was already fitted with ``fit`` on these same rows;
        ``oof``: the first stage's out-of-fold scores of these rows if already computed
        (another fit's ``oof_``, same rows, folds and ``fit``): no out-of-fold copies are
        fitted then."""
        y_ = np.asarray(y, dtype=np.int8)
        if fold is None:
            fold = np.repeat(np.arange(self.folds), -(-len(y_) // self.folds))[: len(y_)]
        self.first_ = first if first is not None else self.fit_stage(x, y_)
        if oof is not None:
            if len(oof) != len(y_):
                raise ConfigError(f"TwoStage: {len(oof)} out-of-fold scores for {len(y_)} rows.")
            oof = np.asarray(oof, dtype=np.float64)
        else:
            oof = np.empty(len(y_))
            for k in np.unique(fold):
                held = fold == k
                oof[held] = _scores(self.fit_stage(x[~held], y_[~held]), x[held])
        self.oof_ = oof
        self.low_ = float(np.quantile(oof[y_ == 1], 1 - self.band_recall, method="lower"))
        self.high_ = _sure(y_, oof, self.sure_precision)
        self.band_ = (oof >= self.low_) & (oof < self.high_)
        band_y = y_[self.band_]
        if len(np.unique(band_y)) < 2:
            raise ConfigError(
                f"TwoStage: the band [{self.low_:.4g}, {self.high_:.4g}) holds "
                f"{int(self.band_.sum())} rows, {int(band_y.sum())} positive; the second stage "
                "needs both classes. Lower band_recall or raise sure_precision."
            )
        self.second_ = self.fit_stage(np.column_stack([x[self.band_], oof[self.band_]]), band_y)

    def predict(self, x: F64) -> F64:
        """Composed scores in [0, 3]: below the band, in it (second stage), above it."""
        first = _scores(self.first_, x)
        band = (first >= self.low_) & (first < self.high_)
        out = np.where(first >= self.high_, 2 + first, first)
        if band.any():
            out[band] = 1 + _scores(self.second_, np.column_stack([x[band], first[band]]))
        return out

    def in_band(self, x: F64) -> npt.NDArray[np.bool_]:
        """Which rows the second stage scores."""
        first = _scores(self.first_, x)
        return (first >= self.low_) & (first < self.high_)


def _scores(model: Scorer, x: F64) -> F64:
    return np.asarray(model.predict(x), dtype=np.float64)


def _sure(y: npt.NDArray[np.int8], p: F64, target: float) -> float:
    """The lowest score from which the precision of ``p >= score`` reaches ``target``
    (infinity if none does)."""
    order = np.argsort(-p, kind="mergesort")
    ps, tps = p[order], np.cumsum(y[order])
    ends = np.r_[np.flatnonzero(np.diff(ps)), len(ps) - 1]
    ok = np.flatnonzero(tps[ends] / (ends + 1) >= target - 1e-12)
    return float(ps[ends[ok[-1]]]) if len(ok) else float("inf")
