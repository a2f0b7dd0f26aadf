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
import operator
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loopline.monitoring.drift import Drift, Reference, categorical, compare, numeric

F64 = npt.NDArray[np.float64]
SCORE = "score"
DAY_MS = 86_400_000


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
        recent: ``recent(limit, since_ms)``: the newest decisions (at most ``limit``,
            decided at ``since_ms`` or later when given) as (score, features JSON) rows.
        model_version: The version whose decisions are compared (its reference).
        publish: Called with each :class:`DriftEvent` (e.g. appended to a topic).
        window: How many recent decisions a check reads, at most.
        window_ms: How far back a check reads (None: no limit). A whole day keeps
            features that follow the time of day comparable with the reference.
        ignore: Features not compared: those that follow the calendar (a weekend day
            is all weekend) are not drift.
        min_rows: Fewer recent rows than this: no verdict (too little to test).
        alpha: The false discovery rate across all features.
        categories_up_to: A reference with this many distinct values or fewer is
            compared as categories.
        clock: Seconds since the epoch (a simulation's clock, or the wall clock).
    """

    reference: Mapping[str, F64]
    recent: Callable[[int, int | None], list[tuple[float, bytes]]]
    model_version: str
    publish: Callable[[DriftEvent], None] | None = None
    window: int = 20_000
    window_ms: int | None = DAY_MS
    ignore: frozenset[str] = frozenset()
    min_rows: int = 500
    alpha: float = 0.01
    categories_up_to: int = 10
    clock: Callable[[], float] = time.time
    last: DriftReport | None = None
    _drifting: set[str] = field(default_factory=set)
    _started_ms: int = -1
    _references: dict[str, Reference | dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._started_ms = int(self.clock() * 1000)

    def check(self) -> DriftReport | None:
        """Compare the recent window with the reference; None when it is too small, or
        when the model has not been watched for a whole ``window_ms`` yet (a part of a
        day is not a day)."""
        now_ms = int(self.clock() * 1000)
        since = None if self.window_ms is None else now_ms - self.window_ms
        if since is not None and since < self._started_ms:
            return None
        rows = self.recent(self.window, since)
        if len(rows) < self.min_rows:
            return None
        compared = [name for name in self.reference if name not in self.ignore]
        current = _columns(rows, compared)
        results = []
        for name in compared:
            ref = self._prepared(name)
            if isinstance(ref, Reference):
                results.append(numeric(name, ref, current[name]))
            else:
                results.append(categorical(name, ref, _counts(current[name])))
        report = DriftReport(now_ms, len(rows), compare(results, alpha=self.alpha))
        self._announce(report)
        self.last = report
        return report

    def _prepared(self, name: str) -> Reference | dict[str, int]:
        """The reference of ``name`` as compared: category counts, or a numeric sample
        prepared once."""
        got = self._references.get(name)
        if got is None:
            ref = self.reference[name]
            few = _distinct(ref) <= self.categories_up_to
            got = self._references[name] = _counts(ref) if few else Reference.of(ref)
        return got

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
    """The logged features as columns (null and absent: NaN), and the scores."""
    decoded = msgspec.json.decode(b"[" + b",".join(features for _, features in rows) + b"]")
    wanted = [n for n in names if n != SCORE]
    row = operator.itemgetter(*wanted) if wanted else lambda d: ()
    try:  # one C call a row; a row without some feature takes the slow way
        values = [row(d) for d in decoded]
    except KeyError:
        values = [tuple(d.get(n) for n in wanted) for d in decoded]
    # None (a NaN in the log) becomes NaN in a float array
    matrix = np.array(values, dtype=np.float64).reshape(len(decoded), len(wanted))
    out = {name: matrix[:, i] for i, name in enumerate(wanted)}
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
