"""The regression check of model CI: a candidate against the champion on one fixed
evaluation set, by the task's headline metric, overall and per slice.

Both models are scored on the same rows, so their figures pair row by row. The rules:

- overall: the candidate fails if its metric is below the champion's by more than
  ``Tolerances.metric`` (a candidate exactly at the limit passes);
- each slice: the same with ``Tolerances.slice``, judged only where the slice holds at
  least ``Tolerances.min_slice_support`` rows with signal (positives, for average
  precision): a figure over ten positives moves by more than any sensible tolerance
  from one row to the next, and is reported without being judged.

A paired bootstrap of the overall difference (resampling rows, both models' metric on
the same resample) says how much of the difference the set's own noise could make: it
is reported beside the verdict, and a tolerance inside its interval is one the set
cannot resolve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError
from loopline.tasks import Metric
from loopline.tasks.base import Arrays, take

OVERALL = "overall"
EPSILON = 1e-12  # a difference at the tolerance itself is not beyond it


@dataclass(frozen=True)
class Figure:
    """A metric's value over some rows, and how many of them carry its signal."""

    value: float
    support: int


@dataclass(frozen=True)
class Figures:
    """One model's metric on the fixed set: overall and per slice."""

    overall: Figure
    slices: Mapping[str, Figure] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """One model scored on the fixed evaluation set.

    Args:
        metric: The task's headline metric.
        arrays: Its row-aligned arrays over the whole set (:meth:`Metric.arrays`).
        slices: Slice name -> the set's rows in it (a boolean mask).
        extra: More figures, reported and not judged (recall at the operating point, ...).
        set_name: What the fixed set is, in words (profile, seed, window; or a file).
        set_sha256: The SHA-256 of its rows and labels: the same set gives the same.
    """

    metric: Metric
    arrays: Arrays
    slices: Mapping[str, npt.NDArray[np.bool_]]
    extra: Mapping[str, float] = field(default_factory=dict)
    set_name: str = ""
    set_sha256: str = ""

    def figures(self) -> Figures:
        """The metric and its support, overall and over each slice."""
        m = self.metric
        overall = Figure(m.value(self.arrays), m.support(self.arrays))
        slices = {}
        for name, rows in self.slices.items():
            part = take(self.arrays, rows)
            slices[name] = Figure(m.value(part), m.support(part))
        return Figures(overall, slices)


@dataclass(frozen=True, kw_only=True)
class Tolerances:
    """How far below the champion a candidate may fall: overall (``metric``) and in a
    slice (``slice``) with at least ``min_slice_support`` rows with signal."""

    metric: float = 0.01
    slice: float = 0.05
    min_slice_support: int = 30

    def __post_init__(self) -> None:
        for name in ("metric", "slice"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                option = "--tolerance" if name == "metric" else "--slice-tolerance"
                raise ConfigError(f"{option} must be between 0 and 1; got {value}.")
        if self.min_slice_support < 1:
            raise ConfigError(
                f"--min-slice-support must be at least 1; got {self.min_slice_support}."
            )


@dataclass(frozen=True)
class Check:
    """One comparison: ``scope`` is ``overall`` or a slice's name."""

    scope: str
    champion: float
    candidate: float
    support: int
    judged: bool
    passed: bool
    why: str

    @property
    def difference(self) -> float:
        return self.candidate - self.champion


def check(champion: Figures, candidate: Figures, tolerances: Tolerances) -> list[Check]:
    """The overall check, then one per slice of the candidate's figures (see the module
    docstring). Only a judged check can fail."""
    overall = _check(OVERALL, champion.overall, candidate.overall, tolerances.metric, 1)
    checks = [overall]
    for name, mine in candidate.slices.items():
        theirs = champion.slices.get(name, Figure(math.nan, 0))
        checks.append(_check(name, theirs, mine, tolerances.slice, tolerances.min_slice_support))
    return checks


def _check(scope: str, champion: Figure, candidate: Figure, tolerance: float, need: int) -> Check:
    support = min(champion.support, candidate.support)
    a, b = champion.value, candidate.value
    figures = f"{b:.4f} against the champion's {a:.4f} (support {support})"
    if math.isnan(a) or math.isnan(b):
        return Check(scope, a, b, support, False, True, f"{scope}: undefined, not judged")
    if support < need:
        why = f"{scope}: {figures}; not judged: support under {need}"
        return Check(scope, a, b, support, False, True, why)
    passed = b >= a - tolerance - EPSILON
    verdict = "within" if passed else "below by more than"
    why = f"{scope}: {figures}, {verdict} the tolerance {tolerance:g}"
    return Check(scope, a, b, support, True, passed, why)


@dataclass(frozen=True)
class Bootstrap:
    """The paired bootstrap of the overall difference (candidate - champion): its 5th
    and 95th percentiles, and the share of resamples below ``-tolerance``."""

    low: float
    high: float
    below_tolerance: float
    resamples: int


def paired_bootstrap(
    metric: Metric,
    champion: Arrays,
    candidate: Arrays,
    *,
    tolerance: float,
    resamples: int = 1000,
    seed: int = 0,
) -> Bootstrap:
    """Resample the rows both models' arrays can use, ``resamples`` times; a resample
    where the metric is undefined (no positive drawn) is skipped."""
    both = champion[0] & candidate[0]
    a, b = take(champion, both), take(candidate, both)
    n = int(both.sum())
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples if n else 0):
        idx = rng.integers(0, n, n)
        diff = metric.value(take(b, idx)) - metric.value(take(a, idx))
        if not math.isnan(diff):
            diffs.append(diff)
    if not diffs:
        return Bootstrap(math.nan, math.nan, math.nan, 0)
    d = np.asarray(diffs)
    low, high = np.percentile(d, [5, 95])
    below = float((d < -tolerance - EPSILON).mean())
    return Bootstrap(float(low), float(high), below, len(d))
