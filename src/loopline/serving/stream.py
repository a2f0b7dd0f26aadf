"""The streaming scorer: the request path's pipeline over the transactions topic, in
micro-batches (the high-throughput path).

Per partition and micro-batch: decode (invalid records to the dead-letter topic),
features as of just before each transaction, one batched model call, rules, decisions
durable in the prediction log (review and decline published), then the offsets move.

Features are exact in log order: per view, a batch is cut into rounds in which no key
appears twice (a key's r-th event of the batch is in round r); each round reads its
features, then is applied, so every transaction sees all earlier ones of its keys, as
the offline engine computes them. The online engine's offsets commit with its state, so
a crash replays the batch onto the same state and the same decisions (stored once: the
transaction id is the key).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from loopline.events import (
    Event,
    EventLog,
    TopicPartition,
    decode_or_dead_letter,
)
from loopline.features import FeatureView
from loopline.features.worker import FeatureWorker, WorkerStats, late_letters, to_columns
from loopline.monitoring.quality import Expectations
from loopline.serving.collector import FREEZE_EVERY_S, freeze_survivors, thaw
from loopline.serving.decisions import DecisionLog, log_row
from loopline.serving.scorer import Decided, Scorer

_json = msgspec.json.Encoder()


@dataclass
class StreamStats(WorkerStats):
    decisions: dict[str, int] = field(default_factory=dict)
    # record time -> durable decision, the newest 100,000 (a long run must not grow memory)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


class StreamScorer(FeatureWorker):
    """Scores ``partitions`` of ``topic`` with ``scorer``'s features, model and rules (the
    feature worker's read loop, with scoring where the worker only applies)."""

    stats: StreamStats

    def __init__(
        self,
        *,
        scorer: Scorer,
        log: EventLog,
        decisions: DecisionLog,
        topic: str,
        schema: type[Event],
        partitions: Sequence[int] | None = None,
        max_records: int = 2000,
        derive: Callable[[dict[str, np.ndarray]], None] | None = None,
        quality: Expectations | None = None,
        watch: Callable[[Decided], None] | None = None,
    ) -> None:
        super().__init__(
            engine=scorer.engine,
            log=log,
            topic=topic,
            schema=schema,
            partitions=partitions,
            max_records=max_records,
            quality=quality,
            derive=derive,
        )
        self.scorer = scorer
        self.decisions = decisions
        self.watch = watch  # told of each decision (e.g. the service's canary guard)
        self.fields = list(schema.__struct_fields__)  # all of them: decisions keep ids
        self.keys = sorted({v.entity.join_key for v in self.engine.views_of(topic)})
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
            self._decide(cols, features, records_)  # a late transaction is still decided
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
        fs, engine = self.scorer.feature_set, self.engine
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
            columns = {f.name: np.empty(n) for f in view.features}
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
            {c: v[idx] for c, v in cols.items()},
            partition=tp.partition,
            positions=(tp.topic, offsets[idx]),
            views=[view],
            late=late[idx],
        )

    def _decide(
        self, cols: dict[str, np.ndarray], features: dict[str, np.ndarray], records: list[Any]
    ) -> None:
        trace_ids = [uuid.uuid4().hex for _ in records]
        decided = self.scorer.decide_columns(cols, features, trace_ids)
        now_ms = int(self.scorer.clock() * 1000)
        rows = []
        for record, d in zip(records, decided, strict=True):
            # the arm (champion / challenger) stays; the fingerprint says it came by stream
            position = f"stream:{record.topic}:{record.partition}:{record.offset}"
            body = _json.encode(d.response)
            rows.append(log_row(d, d.response.transaction_id, position, body, now_ms))
            if self.watch is not None:
                self.watch(d)
            decision = d.response.decision
            self.stats.decisions[decision] = self.stats.decisions.get(decision, 0) + 1
        self.decisions.write_sync(rows)  # durable before the offsets move
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
