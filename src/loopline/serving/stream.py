"""The streaming scorer: an application's request path over an event topic, in
micro-batches (the high-throughput path).

Per partition and micro-batch: decode (invalid records to the dead-letter topic),
features as of just before each event, one batched model call, the application's
policy, predictions durable in the prediction log, then the offsets move.

Features are exact in log order: per view, a batch is cut into rounds in which no key
appears twice (a key's r-th event of the batch is in round r); each round reads its
features, then is applied, so every event sees all earlier ones of its keys, as the
offline engine computes them. The online engine's offsets commit with its state, so a
crash replays the batch onto the same state and the same predictions (stored once: the
request id is the key).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import numpy as np

from loopline.events import Event, EventLog, TopicPartition, decode_or_dead_letter
from loopline.features import FeatureView
from loopline.features.worker import FeatureWorker, WorkerStats, late_letters, to_columns
from loopline.monitoring.quality import Expectations
from loopline.predictions import PredictionLog
from loopline.serving.collector import FREEZE_EVERY_S, freeze_survivors, thaw
from loopline.serving.endpoint import Prediction
from loopline.serving.routing import Deployment, Routing
from loopline.serving.tabular import TabularScorer

_json = msgspec.json.Encoder()


class ColumnPipeline(Protocol):
    """A pipeline that can answer events given as columns with their features."""

    tabular: TabularScorer

    def predict_columns(
        self,
        cols: dict[str, np.ndarray],
        features: dict[str, np.ndarray],
        trace_ids: Sequence[str],
        routing: Routing,
    ) -> list[Prediction[Any]]: ...


@dataclass
class StreamStats(WorkerStats):
    outcomes: dict[str, int] = field(default_factory=dict)
    # record time -> durable prediction, the newest 100,000 (a long run must not grow memory)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


class StreamScorer(FeatureWorker):
    """Answers ``partitions`` of ``topic`` with ``pipeline``, routed by ``deployment``
    (the feature worker's read loop, with predictions where the worker only applies)."""

    stats: StreamStats

    def __init__(
        self,
        *,
        pipeline: ColumnPipeline,
        deployment: Deployment,
        log: EventLog,
        predictions: PredictionLog,
        topic: str,
        schema: type[Event],
        partitions: Sequence[int] | None = None,
        max_records: int = 2000,
        derive: Callable[[dict[str, np.ndarray]], None] | None = None,
        quality: Expectations | None = None,
    ) -> None:
        super().__init__(
            engine=pipeline.tabular.engine,
            log=log,
            topic=topic,
            schema=schema,
            partitions=partitions,
            max_records=max_records,
            quality=quality,
            derive=derive,
        )
        self.pipeline = pipeline
        self.deployment = deployment
        self.predictions = predictions
        self.fields = list(schema.__struct_fields__)  # all of them: predictions keep ids
        self.stats = StreamStats()

    def run(self, *, until: Callable[[], bool] | None = None, idle_sleep_s: float = 0.05) -> None:
        """Score until ``until()`` is true, keeping full garbage collections short (see
        :mod:`loopline.serving.collector`): they would stall every event in flight."""
        freeze_survivors()
        frozen = time.monotonic()

        def done() -> bool:
            nonlocal frozen
            if time.monotonic() - frozen >= FREEZE_EVERY_S:
                freeze_survivors()
                frozen = time.monotonic()
            return until is not None and until()

        try:
            super().run(until=done, idle_sleep_s=idle_sleep_s)
        finally:
            thaw()

    def _process(self, tp: TopicPartition, records: list[Any]) -> None:
        decoded = decode_or_dead_letter(records, self.codec, self.dlq)
        self.stats.invalid += len(records) - len(decoded)
        decoded, screened = self._screen(decoded, to_columns([e for _, e in decoded], self.fields))
        if decoded:
            cols = dict(screened)
            if self.derive is not None:
                self.derive(cols)
            offsets = np.array([r.offset for r, _ in decoded], dtype=np.int64)
            late: dict[str, np.ndarray] = {}
            features = self._features_in_rounds(cols, tp, offsets, late)
            records_ = [r for r, _ in decoded]
            self._predict(cols, features, records_)  # a late event is still answered
            failures = late_letters(records_, late)  # but not aggregated: dead-lettered
            self.dlq.send_many(failures)
            self.stats.late += len(failures)
        self.engine.commit(tp.partition, offsets={tp: records[-1].offset + 1})
        self.stats.events += len(decoded)
        self.stats.batches += 1

    def _features_in_rounds(
        self,
        cols: dict[str, np.ndarray],
        tp: TopicPartition,
        offsets: np.ndarray,
        late_out: dict[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """Per view, round ``r`` holds each key's ``r``-th event of the batch: no key twice,
        so one read gives every event of the round its history before it (then the round
        is applied for each key's next event), or, for a set whose features include the
        event itself, the round is applied first and then read. Each key's events stay in
        log order; lateness is judged in log order for the whole batch first."""
        fs, engine = self.pipeline.tabular.feature_set, self.engine
        times = np.asarray(cols[fs.source.timestamp], dtype=np.int64)
        n = len(offsets)
        out: dict[str, np.ndarray] = {}
        for view in fs.views:
            keys = np.asarray(cols[view.entity.join_key]).astype(str)
            applied = view.source.topic == tp.topic
            rounds = _occurrence(keys) if applied else np.zeros(n, dtype=np.int64)
            late = engine.late_mask(view, times, tp.partition) if applied else None
            if late is not None:
                late_out[f"{view.name}@{view.version}"] = late
            columns = {f.name: np.empty((n, f.width) if not f.scalar else n) for f in view.features}
            for r in range(int(rounds.max(initial=-1)) + 1):
                idx = np.flatnonzero(rounds == r)
                if late is not None and fs.include_event:
                    self._apply_round(view, cols, tp, offsets, late, idx)
                for name, values in engine.read_many(view, keys[idx].tolist(), times[idx]).items():
                    columns[name][idx] = values
                if late is not None and not fs.include_event:
                    self._apply_round(view, cols, tp, offsets, late, idx)
            out.update({f"{view.name}__{name}": v for name, v in columns.items()})
        read = {v.version for v in fs.views}
        others = [v for v in engine.views_of(tp.topic) if v.version not in read]
        if others:  # maintained here, read by no feature of this set: applied as they are
            late_out.update(
                engine.apply_many(
                    cols, partition=tp.partition, positions=(tp.topic, offsets), views=others
                )
            )
        return fs.finish(out, cols)

    def _apply_round(
        self,
        view: FeatureView,
        cols: dict[str, np.ndarray],
        tp: TopicPartition,
        offsets: np.ndarray,
        late: np.ndarray,
        idx: np.ndarray,
    ) -> None:
        self.engine.apply_many(
            {c: cols[c][idx] for c in view.columns},  # what the view reads: no other column
            partition=tp.partition,
            positions=(tp.topic, offsets[idx]),
            views=[view],
            late=late[idx],
        )

    def _predict(
        self, cols: dict[str, np.ndarray], features: dict[str, np.ndarray], records: list[Any]
    ) -> None:
        trace_ids = [uuid.uuid4().hex for _ in records]
        routing = self.deployment.routing
        predicted = self.pipeline.predict_columns(cols, features, trace_ids, routing)
        now_ms = int(self.pipeline.tabular.clock() * 1000)
        rows = []
        for record, p in zip(records, predicted, strict=True):
            # the arm (champion / challenger) stays; the fingerprint says it came by stream
            position = f"stream:{record.topic}:{record.partition}:{record.offset}"
            rows.append(p.row(p.request_id, position, now_ms, _json.encode(p.response)))
            self.deployment.observe(p)
            self.stats.outcomes[p.outcome] = self.stats.outcomes.get(p.outcome, 0) + 1
        self.predictions.write_many(rows)  # durable before the offsets move
        done = time.time() * 1000
        self.stats.latencies_ms.extend(done - r.timestamp_ms for r in records)


def _occurrence(keys: np.ndarray) -> np.ndarray:
    """How many times each event's key appeared before it in ``keys`` (0 for the empty
    key, which belongs to no entity)."""
    n = len(keys)
    _, codes = np.unique(keys, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    lengths = np.diff(np.r_[starts, n])
    out = np.empty(n, dtype=np.int64)
    out[order] = np.arange(n) - np.repeat(starts, lengths)
    out[keys == ""] = 0
    return out
