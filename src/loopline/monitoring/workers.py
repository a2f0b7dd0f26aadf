"""Prometheus collectors of the stream workers, read when scraped (nothing on the hot path).

:class:`WorkerCollector` reports a :class:`~loopline.features.worker.FeatureWorker` (or a
streaming scorer):
- its consumer lag per topic and partition;
- the events it processed;
- its dead letters by reason, and data-quality violations by field;
- the last batch's null rates and category counts;
- how far the newest event it applied trails the clock (the online features' freshness
  lag). Register it next to the service's own metrics with
``registry.register(WorkerCollector(worker))``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loopline.events import TopicPartition


class WorkerCollector(Collector):
    def __init__(self, worker: Any) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        lag = GaugeMetricFamily(
            "loopline_consumer_lag",
            "Records on the log not yet processed",
            labels=["topic", "partition"],
        )
        fresh = GaugeMetricFamily(
            "loopline_feature_freshness_lag_seconds",
            "Clock minus the newest event time applied to the online features",
            labels=["topic"],
        )
        newest = None
        for p in w.partitions:
            tp = TopicPartition(w.topic, p)
            behind = w.log.end_offset(tp) - w.engine.offset(tp)
            lag.add_metric([w.topic, str(p)], max(behind, 0))
            marks = w.engine.checkpoint(p).watermarks.values()
            if marks:
                newest = max(max(marks), newest or 0)
        yield lag
        if newest is not None:
            fresh.add_metric([w.topic], max(time.time() - newest / 1000, 0.0))
        yield fresh
        events = CounterMetricFamily(
            "loopline_consumer_events", "Events processed", labels=["topic"]
        )
        events.add_metric([w.topic], w.stats.events)
        yield events
        letters = CounterMetricFamily(
            "loopline_dead_letters",
            "Records sent to the dead-letter topic, by reason",
            labels=["topic", "reason"],
        )
        letters.add_metric([w.topic, "invalid"], w.stats.invalid)
        letters.add_metric([w.topic, "late"], w.stats.late)
        letters.add_metric([w.topic, "quality"], sum(w.stats.violations.values()))
        yield letters
        violations = CounterMetricFamily(
            "loopline_quality_violations",
            "Records that broke the topic's expectations, by field",
            labels=["topic", "field"],
        )
        for name, count in sorted(w.stats.violations.items()):
            violations.add_metric([w.topic, name], count)
        yield violations
        batch = w.stats.quality
        nulls = GaugeMetricFamily(
            "loopline_null_rate",
            "Share of the last batch missing the field",
            labels=["topic", "field"],
        )
        distinct = GaugeMetricFamily(
            "loopline_category_cardinality",
            "Distinct values of the field in the last batch",
            labels=["topic", "field"],
        )
        breaches = GaugeMetricFamily(
            "loopline_quality_breaches",
            "Batch-level expectations (null rates, cardinality) the last batch broke",
            labels=["topic"],
        )
        if batch is not None:
            for name, rate in batch.null_rates.items():
                nulls.add_metric([w.topic, name], rate)
            for name, count in batch.cardinality.items():
                distinct.add_metric([w.topic, name], count)
            breaches.add_metric([w.topic], len(batch.breaches))
        yield nulls
        yield distinct
        yield breaches
