"""The two-stage scorer: the second stage is fitted on the first stage's uncertain band
only, from out-of-fold scores; scores compose by rank."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from loopline.exceptions import ConfigError
from loopline.training.cascade import TwoStage


class Column:
    """A stand-in model: scores are one column of x."""

    def __init__(self, column: int) -> None:
        self.column = column

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(x[:, self.column], dtype=np.float64)


class Recorder:
    """A fit function that records what each fit was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]] = []

    def __call__(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.int8]) -> Column:
        self.calls.append((x.copy(), y.copy()))
        return Column(0) if x.shape[1] == 2 else Column(1)  # 1st stage: x[:,0]; 2nd: x[:,1]


def _data() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]:
    score = np.linspace(0.0, 0.95, 20)  # the first stage's score
    other = np.arange(20)[::-1] / 20.0  # what the second stage reads
    y = np.zeros(20, dtype=np.int8)
    y[[8, 10, 12, 16, 17, 18, 19]] = 1
    return np.column_stack([score, other]), y


def test_the_second_stage_is_fitted_on_the_band_only() -> None:
    x, y = _data()
    fit = Recorder()
    model = TwoStage(fit=fit, folds=2, band_recall=1.0, sure_precision=1.0)
    model.fit(x, y)
    assert len(fit.calls) == 4  # the first stage, 2 out-of-fold copies, the second stage
    # band: from the lowest positive (row 8) up to the lowest score of precision 1 (row 16)
    assert model.low_ == x[8, 0]
    assert model.high_ == x[16, 0]
    assert np.flatnonzero(model.band_).tolist() == list(range(8, 16))
    band_x, band_y = fit.calls[-1]
    assert band_y.tolist() == y[8:16].tolist()
    assert band_x[:, :2].tolist() == x[8:16].tolist()
    assert band_x[:, 2].tolist() == x[8:16, 0].tolist()  # + the out-of-fold first score
    # each out-of-fold copy was fitted without its fold
    assert [len(c[1]) for c in fit.calls[1:3]] == [10, 10]


def test_scores_compose_by_rank() -> None:
    x, y = _data()
    model = TwoStage(fit=Recorder(), folds=2, band_recall=1.0, sure_precision=1.0)
    model.fit(x, y)
    p = model.predict(x)
    below, band, above = p[:8], p[8:16], p[16:]
    assert below.max() < band.min()
    assert band.max() < above.min()
    # inside the band the second stage decides: it reads x[:, 1], which falls with the row
    assert (np.diff(band) < 0).all()
    assert model.in_band(x).tolist() == model.band_.tolist()


def test_a_given_first_stage_is_not_refitted() -> None:
    x, y = _data()
    fit = Recorder()
    model = TwoStage(fit=fit, folds=2, band_recall=1.0, sure_precision=1.0)
    first = Column(0)
    model.fit(x, y, fold=np.arange(20) % 2, first=first)
    assert model.first_ is first
    assert len(fit.calls) == 3


def test_out_of_fold_scores_are_reused_for_another_band() -> None:
    x, y = _data()
    fit = Recorder()
    wide = TwoStage(fit=fit, folds=2, band_recall=1.0, sure_precision=1.0)
    wide.fit(x, y)
    calls = len(fit.calls)
    narrow = TwoStage(fit=fit, folds=2, band_recall=0.8, sure_precision=1.0)
    narrow.fit(x, y, first=wide.first_, oof=wide.oof_)
    assert len(fit.calls) == calls + 1  # the second stage only
    assert narrow.oof_.tolist() == wide.oof_.tolist()
    assert narrow.high_ == wide.high_
    assert narrow.low_ > wide.low_
    fresh = TwoStage(fit=Recorder(), folds=2, band_recall=0.8, sure_precision=1.0)
    fresh.fit(x, y)
    assert (fresh.low_, fresh.high_) == (narrow.low_, narrow.high_)
    assert fresh.band_.tolist() == narrow.band_.tolist()
    with pytest.raises(ConfigError, match="out-of-fold scores"):
        narrow.fit(x, y, oof=wide.oof_[:5])


def test_a_band_of_one_class_is_refused() -> None:
    x, y = _data()
    y[:] = 0
    y[[18, 19]] = 1
    with pytest.raises(ConfigError, match="needs both classes"):
        TwoStage(fit=Recorder(), folds=2, band_recall=1.0, sure_precision=1.0).fit(x, y)
