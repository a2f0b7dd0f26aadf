"""The drift monitor: the side worker that compares what the service sees now with what
its model was trained on.

The reference is a sample of the training run's validation rows: their features and the
model's scores, registered with the model (``reference.parquet``). The recent window is
read from the prediction log, which already stores every decision's features and score.
Nothing is added to the request path: the log is written there anyway, and the
comparison runs here, off it.

Each check compares every feature and the score distribution:
- PSI and KS for numeric features;
- chi-square and Cramér's V for features with few distinct values (flags, counts of
  categories);
- Benjamini-Hochberg and the effect-size gates of :func:`loopline.monitoring.drift.compare`.

The result goes out three ways:
- gauges per feature (``loopline_drift_psi``, ``loopline_drift_statistic``,
  ``loopline_drift_detected``);
- an event on the drift topic for each feature that starts drifting (and when it stops);
- the report of the last check.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loopline.monitoring.drift import Drift, categorical, compare, numeric

F64 = npt.NDArray[np.float64]
SCORE = "score"


@dataclass(frozen=True)
class DriftReport:
    """One check: per feature (and ``score``) its comparison, over ``rows`` recent rows."""

    checked_ms: int
    rows: int
    results: list[Drift]

    @property
    def drifted(self) -> list[str]:
        return [r.feature for r in self.results if r.drifted]


class DriftEvent(msgspec.Struct, frozen=True, kw_only=True):
    """What the drift topic carries when a feature starts or stops drifting."""

    feature: str
    drifting: bool
    psi: float | None
    statistic: float
    p_adjusted: float
    rows: int
    model_version: str
    checked_ms: int


@dataclass
class DriftMonitor:
    """Checks ``recent()`` rows against ``reference`` columns.

    Args:
        reference: Feature name (and ``score``) -> the training-time sample.
        recent: The newest decisions as (score, features JSON) rows.
        model_version: The version whose decisions are compared (its reference).
        publish: Called with each :class:`DriftEvent` (e.g. appended to a topic).
        window: How many recent decisions a check reads.
        min_rows: Fewer recent rows than this: no verdict (too little to test).
        alpha: The false discovery rate across all features.
        categories_up_to: A reference with this many distinct values or fewer is
            compared as categories.
    """

    reference: Mapping[str, F64]
    recent: Callable[[int], list[tuple[float, bytes]]]
    model_version: str
    publish: Callable[[DriftEvent], None] | None = None
    window: int = 5000
    min_rows: int = 500
    alpha: float = 0.01
    categories_up_to: int = 10
    last: DriftReport | None = None
    _drifting: set[str] = field(default_factory=set)

    def check(self) -> DriftReport | None:
        """Compare the recent window with the reference; None when it is too small."""
        rows = self.recent(self.window)
        if len(rows) < self.min_rows:
            return None
        current = _columns(rows, list(self.reference))
        results = []
        for name, ref in self.reference.items():
            now = current[name]
            if _distinct(ref) <= self.categories_up_to:
                results.append(categorical(name, _counts(ref), _counts(now)))
            else:
                results.append(numeric(name, ref, now))
        report = DriftReport(int(time.time() * 1000), len(rows), compare(results, alpha=self.alpha))
        self._announce(report)
        self.last = report
        return report

    def _announce(self, report: DriftReport) -> None:
        now = set(report.drifted)
        changed = (now - self._drifting) | (self._drifting - now)
        self._drifting = now
        if self.publish is None:
            return
        for r in report.results:
            if r.feature in changed:
                self.publish(
                    DriftEvent(
                        feature=r.feature,
                        drifting=r.drifted,
                        psi=r.psi,
                        statistic=r.statistic,
                        p_adjusted=r.p_adjusted,
                        rows=report.rows,
                        model_version=self.model_version,
                        checked_ms=report.checked_ms,
                    )
                )


class DriftCollector(Collector):
    """The last report of ``owner.drift`` (a :class:`DriftMonitor`, or None) as Prometheus
    gauges, read when scraped: the owner may replace its monitor (a new champion)."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        psi = GaugeMetricFamily(
            "loopline_drift_psi", "PSI against the training reference", labels=["feature"]
        )
        stat = GaugeMetricFamily(
            "loopline_drift_statistic",
            "KS distance (numeric) or Cramér's V (categories) against the training reference",
            labels=["feature"],
        )
        flag = GaugeMetricFamily(
            "loopline_drift_detected",
            "1 where the feature drifted (corrected p-value and effect size)",
            labels=["feature"],
        )
        monitor: DriftMonitor | None = self.owner.drift
        report = monitor.last if monitor is not None else None
        for r in report.results if report else []:
            if r.psi is not None:
                psi.add_metric([r.feature], r.psi)
            stat.add_metric([r.feature], r.statistic)
            flag.add_metric([r.feature], 1.0 if r.drifted else 0.0)
        yield psi
        yield stat
        yield flag


def _columns(rows: list[tuple[float, bytes]], names: list[str]) -> dict[str, F64]:
    decoded = [msgspec.json.decode(features) for _, features in rows]
    out = {
        name: np.array(
            [math.nan if (v := d.get(name)) is None else v for d in decoded], dtype=np.float64
        )
        for name in names
        if name != SCORE
    }
    out[SCORE] = np.array([score for score, _ in rows], dtype=np.float64)
    return out


def _distinct(values: F64) -> int:
    return len(np.unique(values[~np.isnan(values)]))


def _counts(values: F64) -> dict[str, int]:
    keys, counts = np.unique(np.where(np.isnan(values), -math.inf, values), return_counts=True)
    return {("missing" if math.isinf(k) and k < 0 else repr(float(k))): int(c)
            for k, c in zip(keys.tolist(), counts.tolist(), strict=True)}  # fmt: skip


def reference_of(path: Any) -> dict[str, F64]:
    """A registered model's drift reference (``reference.parquet``) as columns."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return {name: table[name].to_numpy().astype(np.float64) for name in table.column_names}
