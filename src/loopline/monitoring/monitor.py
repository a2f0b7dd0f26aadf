"""The drift monitor: the side worker that compares what the service sees now with what
its model was trained on.

The reference is a sample of the training run's validation rows: their inputs and the
model's outputs, registered in the model's bundle (``reference.parquet``). The recent
window is read from the prediction log, which already stores every prediction's inputs
and outputs. Nothing is added to the request path: the log is written there anyway, and
the comparison runs here, off it.

Each check compares every input and output column of the reference:
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

import asyncio
import logging
import math
import operator
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import numpy.typing as npt
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loopline.monitoring.drift import Drift, Reference, categorical, compare, numeric
from loopline.units import DAY_MS

if TYPE_CHECKING:
    from loopline.models import ServingModel
    from loopline.predictions import Recent

F64 = npt.NDArray[np.float64]
REFERENCE_FILE = "reference.parquet"  # a bundle's drift reference
log = logging.getLogger("loopline.monitoring")


@dataclass(frozen=True)
class DriftReport:
    """One check: per input (and output) its comparison, over ``rows`` recent rows."""

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
        reference: Input or output name -> the training-time sample.
        recent: ``recent(limit, since_ms)``: the newest predictions (at most ``limit``,
            decided at ``since_ms`` or later when given) from the prediction log.
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
    recent: Callable[[int, int | None], list[Recent]]
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
    """The last report of ``watch`` as Prometheus gauges, read when scraped (the watch
    replaces its monitor with a new champion's)."""

    def __init__(self, watch: DriftWatch) -> None:
        self.watch = watch

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
        report = self.watch.last
        for r in report.results if report else []:
            if r.psi is not None:
                psi.add_metric([r.feature], r.psi)
            stat.add_metric([r.feature], r.statistic)
            flag.add_metric([r.feature], 1.0 if r.drifted else 0.0)
        yield psi
        yield stat
        yield flag


def _columns(rows: list[Recent], names: list[str]) -> dict[str, F64]:
    """The logged inputs (or, for names not among them, outputs) as columns; null and
    absent: NaN."""
    inputs = msgspec.json.decode(b"[" + b",".join(r.inputs for r in rows) + b"]")
    outputs = msgspec.json.decode(b"[" + b",".join(r.outputs for r in rows) + b"]")
    first = inputs[0] if inputs else {}
    wanted = [n for n in names if n in first]
    rest = [n for n in names if n not in first]
    matrices = ((wanted, _matrix(inputs, wanted)), (rest, _matrix(outputs, rest)))
    return {n: m[:, i] for names_, m in matrices for i, n in enumerate(names_)}


def _matrix(decoded: list[dict[str, Any]], wanted: list[str]) -> F64:
    if not wanted:
        return np.zeros((len(decoded), 0))
    get = operator.itemgetter(*wanted)
    row = get if len(wanted) > 1 else lambda d: (get(d),)
    try:  # one C call a row; a row without some name takes the slow way
        values = [row(d) for d in decoded]
    except KeyError:
        values = [tuple(d.get(n) for n in wanted) for d in decoded]
    # None (a NaN in the log) becomes NaN in a float array
    return np.array(values, dtype=np.float64).reshape(len(decoded), len(wanted))


def _distinct(values: F64) -> int:
    return len(np.unique(values[~np.isnan(values)]))


def _counts(values: F64) -> dict[str, int]:
    keys, counts = np.unique(np.where(np.isnan(values), -math.inf, values), return_counts=True)
    return {("missing" if math.isinf(k) and k < 0 else repr(float(k))): int(c)
            for k, c in zip(keys.tolist(), counts.tolist(), strict=True)}  # fmt: skip


def reference_of(data: bytes) -> dict[str, F64]:
    """A drift reference (Parquet bytes: a bundle's ``reference.parquet``) as columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data))
    return {name: table[name].to_numpy().astype(np.float64) for name in table.column_names}


class DriftWatch:
    """The drift monitor of whichever model is the champion, checked every ``every_s``.

    Args:
        monitor_for: The monitor of a model (None: it has no reference to compare with).
        champion: The first champion.
    """

    def __init__(
        self, monitor_for: Callable[[ServingModel], DriftMonitor | None], champion: ServingModel
    ) -> None:
        self.monitor_for = monitor_for
        self.monitor: DriftMonitor | None = monitor_for(champion)

    def retarget(self, champion: ServingModel) -> None:
        """Compare ``champion``'s predictions with its own reference from now on."""
        self.monitor = self.monitor_for(champion)

    def check(self) -> DriftReport | None:
        return None if self.monitor is None else self.monitor.check()

    @property
    def last(self) -> DriftReport | None:
        return None if self.monitor is None else self.monitor.last

    async def run(self, every_s: float) -> None:
        """Check off the event loop every ``every_s``, forever."""
        while True:
            await asyncio.sleep(every_s)
            try:
                report = await asyncio.to_thread(self.check)
            except Exception:  # a failed check must not stop the watch
                log.warning("drift check failed", exc_info=True)
                continue
            if report is not None and report.drifted:
                log.warning("drift", extra={"features": report.drifted, "rows": report.rows})
