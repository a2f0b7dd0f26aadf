"""The two contracts of a task: a :class:`Metric` scores outputs against labels, and a
:class:`Task` names its training objective, its headline metric and its report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Outputs = Mapping[str, Any]  # what a prediction answered (as logged)
LabelValues = Mapping[str, float]  # a request's labels: subject -> value
Arrays = tuple[npt.NDArray[Any], ...]


class Metric(Protocol):
    """A figure of merit, higher is better.

    Scoring is split in two so that a bootstrap can resample rows cheaply: ``arrays``
    turns logged outputs and their labels into row-aligned arrays once, then ``value``
    computes the figure from those arrays or from any resample of their rows. The
    arrays keep one row per input row, and the first is a boolean mask of the rows the
    metric can use (a request no model scored, or one without its label yet, is not):
    two models' arrays over the same requests can then be paired row by row.
    """

    @property
    def name(self) -> str:
        """What the figure is called (in reports, registered metrics, gates)."""
        ...

    def arrays(self, outputs: Sequence[Outputs], labels: Sequence[LabelValues]) -> Arrays:
        """One row per input row: the usable-rows mask first, then the metric's own."""
        ...

    def value(self, arrays: Arrays) -> float:
        """The metric over ``arrays`` (NaN when undefined, e.g. no positive label)."""
        ...

    def support(self, arrays: Arrays) -> int:
        """How many rows carry the signal the metric needs (positives, relevant items,
        labelled classes): a gate waits until there are enough."""
        ...


class Task(Protocol):
    """What a model is asked to do."""

    @property
    def name(self) -> str:
        """``binary``, ``ranking``, ``multiclass``."""
        ...

    @property
    def objective(self) -> str:
        """The training objective (LightGBM's name for it)."""
        ...

    @property
    def metric(self) -> Metric:
        """The headline metric: what retraining triggers and promotion gates compare."""
        ...

    def report(self, outputs: Sequence[Outputs], labels: Sequence[LabelValues]) -> dict[str, float]:
        """Every metric of the task over labelled rows (for reports and monitoring)."""
        ...


def take(arrays: Arrays, rows: npt.NDArray[np.int64] | npt.NDArray[np.bool_]) -> Arrays:
    """``arrays`` restricted to ``rows`` (indices of a resample, or a mask)."""
    return tuple(a[rows] for a in arrays)


def usable(arrays: Arrays) -> Arrays:
    """The rows the metric can use, without the mask."""
    mask = arrays[0]
    return tuple(a[mask] for a in arrays[1:])
