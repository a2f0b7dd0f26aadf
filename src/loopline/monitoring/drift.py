"""Drift between a reference window (training data) and a recent one.

The request path only counts: :class:`FixedBins` adds a batch of values to fixed-edge
histograms (one ``searchsorted`` + ``bincount``). A side worker compares histograms or
samples with :func:`compare`:

* numeric features: PSI over the reference's decile bins, and the two-sample KS test;
* categorical features: the chi-square test of the two count vectors (categories with
  under 5 expected in either pooled, as the test needs), Cramér's V as the effect size;
* p-values are corrected across all features at once (Benjamini-Hochberg), and a feature
  drifts only when its corrected p-value is under ``alpha`` *and* its effect is large
  enough (PSI >= 0.2, or KS >= 0.1, or V >= 0.1): with millions of events every test is
  "significant", so significance alone would raise alarms on noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
PSI_DRIFT = 0.2  # the usual reading: < 0.1 stable, 0.1-0.2 moderate, >= 0.2 shifted
KS_DRIFT = 0.1
CRAMERS_V_DRIFT = 0.1
_EPS = 1e-6


@dataclass(frozen=True)
class Drift:
    """One feature's comparison."""

    feature: str
    kind: str  # "numeric" or "categorical"
    psi: float | None
    statistic: float  # KS D, or Cramér's V
    p_value: float
    p_adjusted: float = float("nan")
    drifted: bool = False


class FixedBins:
    """Counts of values in fixed bins: edges from a reference sample's quantiles (plus
    one bin each for below, above, and missing)."""

    def __init__(self, edges: F64) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.counts = np.zeros(len(self.edges) + 2, dtype=np.int64)  # ... + NaN bin

    @classmethod
    def from_reference(cls, values: npt.ArrayLike, bins: int = 10) -> FixedBins:
        v = np.asarray(values, dtype=np.float64)
        v = v[~np.isnan(v)]
        edges = (
            np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1])) if len(v) else np.array([])
        )
        out = cls(edges)
        out.add(values)
        return out

    def add(self, values: npt.ArrayLike) -> None:
        v = np.asarray(values, dtype=np.float64)
        nan = np.isnan(v)
        idx = np.searchsorted(self.edges, v[~nan], side="right")
        self.counts[: len(self.edges) + 1] += np.bincount(idx, minlength=len(self.edges) + 1)
        self.counts[-1] += int(nan.sum())

    def empty_like(self) -> FixedBins:
        return FixedBins(self.edges)


def psi(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Population stability index of two count vectors over the same bins."""
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    rp = np.maximum(r / max(r.sum(), 1.0), _EPS)
    cp = np.maximum(c / max(c.sum(), 1.0), _EPS)
    return float(np.sum((cp - rp) * np.log(cp / rp)))


@dataclass(frozen=True)
class Reference:
    """A numeric feature's reference sample, prepared once for many comparisons: its
    values sorted, how many are missing, its decile bins."""

    values: F64  # sorted, no NaN
    missing: int
    bins: FixedBins

    @classmethod
    def of(cls, values: npt.ArrayLike) -> Reference:
        v = np.asarray(values, dtype=np.float64)
        present = np.sort(v[~np.isnan(v)])
        return cls(present, len(v) - len(present), FixedBins.from_reference(v))


def numeric(name: str, reference: npt.ArrayLike | Reference, current: npt.ArrayLike) -> Drift:
    """PSI (reference deciles) and the two-sample KS test of two samples."""
    ref = reference if isinstance(reference, Reference) else Reference.of(reference)
    cur = np.asarray(current, dtype=np.float64)
    now = ref.bins.empty_like()
    now.add(cur)
    index = psi(ref.bins.counts, now.counts)
    a, b = ref.values, cur[~np.isnan(cur)]
    if len(a) == 0 or len(b) == 0:  # no values to rank on one side: test how often it is missing
        present = categorical(
            name,
            {"missing": ref.missing, "present": len(a)},
            {"missing": len(cur) - len(b), "present": len(b)},
        )
        return Drift(name, "numeric", index, present.statistic, present.p_value)
    d, p = ks_2samp(a, b)
    return Drift(name, "numeric", index, d, p)


def ks_2samp(a: F64, b: F64) -> tuple[float, float]:
    """The two-sample Kolmogorov-Smirnov distance and its asymptotic p-value (the exact
    one costs O(n * m): seconds at monitoring sizes, for no difference there)."""
    from scipy.special import kolmogorov

    a, b = np.sort(a), np.sort(b)
    both = np.concatenate([a, b])
    gap = np.searchsorted(a, both, side="right") / len(a)
    gap -= np.searchsorted(b, both, side="right") / len(b)
    d = float(np.abs(gap).max())
    n = len(a) * len(b) / (len(a) + len(b))
    return d, float(kolmogorov(np.sqrt(n) * d))


def categorical(name: str, reference: Mapping[str, int], current: Mapping[str, int]) -> Drift:
    """Chi-square test of two category count tables; effect: Cramér's V."""
    from scipy.stats import chi2_contingency

    cats = sorted(set(reference) | set(current))
    table = np.array(
        [[reference.get(k, 0) for k in cats], [current.get(k, 0) for k in cats]], dtype=float
    )
    table = table[:, table.sum(axis=0) > 0]
    if table.size and (table.sum(axis=1) > 0).all():
        # the test is only valid with about 5 expected per cell: pool the rare categories
        expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        rare = (expected < 5).any(axis=0)
        if rare.sum() > 1:
            table = np.column_stack([table[:, ~rare], table[:, rare].sum(axis=1)])
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return Drift(name, "categorical", None, 0.0, 1.0)
    chi2, p, _, _ = chi2_contingency(table, correction=False)
    v = float(np.sqrt(chi2 / (table.sum() * (min(table.shape) - 1))))
    return Drift(name, "categorical", psi(table[0], table[1]), v, float(p))


def compare(results: list[Drift], *, alpha: float = 0.01) -> list[Drift]:
    """Benjamini-Hochberg over all features, then the effect-size gate."""
    n = len(results)
    if n == 0:
        return []
    p = np.array([r.p_value for r in results])
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    adjusted = np.empty(n)
    adjusted[order] = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    out = []
    for r, q in zip(results, adjusted.tolist(), strict=True):
        big = (
            r.statistic >= CRAMERS_V_DRIFT
            if r.kind == "categorical"
            else (r.psi or 0.0) >= PSI_DRIFT or r.statistic >= KS_DRIFT
        )
        out.append(Drift(r.feature, r.kind, r.psi, r.statistic, r.p_value, q, q < alpha and big))
    return out
