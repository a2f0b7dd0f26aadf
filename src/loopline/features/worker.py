"""The stream job: consume a source topic's partitions into an :class:`OnlineEngine`.

Each micro-batch is read at the offset stored in the engine's checkpoint (not a consumer
group's), decoded (records that fail go to ``<topic>.dlq``), turned into columns, and
applied; late events go to the dead-letter topic with the reason. The engine commits the
new offsets with the state they produced, so a worker killed at any point resumes
exactly where its state stands.
"""

from __future__ import annotations

import math
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from loopline.events import (
    Codec,
    DeadLetterQueue,
    Event,
    EventLog,
    Record,
    TopicPartition,
    decode_or_dead_letter,
)
from loopline.exceptions import LateEventError
from loopline.features.online import Columns, OnlineEngine
from loopline.monitoring.quality import BatchQuality, DataQualityError, Expectations


def to_columns(events: Sequence[Any], fields: Sequence[str]) -> Columns:
    """Columns of ``fields`` from event structs: numbers as float64 (None -> NaN; integer
    fields stay int64), lists of numbers (vectors) as float64 arrays of shape (rows, len)
    (None -> a row of NaN), everything else as strings. A field's kind comes from the
    struct's declared type, so a batch where an optional number is always missing is still
    a number column."""
    out: dict[str, np.ndarray] = {}
    declared = _numeric_fields(type(events[0])) if events else {}
    for name in fields:
        values = [getattr(e, name) for e in events]
        sample = next((v for v in values if v is not None), declared.get(name, ""))
        if isinstance(sample, list | tuple):
            gap = [math.nan] * len(sample)
            rows = [gap if v is None else v for v in values]
            out[name] = np.array(rows, dtype=np.float64).reshape(len(values), len(sample))
        elif isinstance(sample, bool) or not isinstance(sample, int | float):
            out[name] = np.array(["" if v is None else str(v) for v in values])
        elif isinstance(sample, int) and None not in values:
            out[name] = np.array(values, dtype=np.int64)
        else:
            out[name] = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    return out


_NUMERIC: dict[type, dict[str, float]] = {}


def _numeric_fields(schema: type) -> dict[str, float]:
    """A struct's number fields, each with a sample value of its type (0 or 0.0)."""
    if schema in _NUMERIC:
        return _NUMERIC[schema]
    out: dict[str, float] = {}
    _NUMERIC[schema] = out
    if not issubclass(schema, msgspec.Struct):
        return out
    for f in msgspec.structs.fields(schema):
        kinds = set(typing.get_args(f.type)) or {f.type}
        if float in kinds:
            out[f.name] = 0.0
        elif int in kinds and bool not in kinds:
            out[f.name] = 0
    return out


@dataclass
class WorkerStats:
    """What a worker has done since it started."""

    events: int = 0
    late: int = 0
    invalid: int = 0
    batches: int = 0
    per_partition: dict[int, int] = field(default_factory=dict)
    violations: dict[str, int] = field(default_factory=dict)  # data quality, by field
    quality: BatchQuality | None = None  # the last batch's


class FeatureWorker:
    """Feeds ``partitions`` of ``topic`` into ``engine``.

    Args:
        engine: The online engine (its views read this topic).
        log: The event log.
        topic: The source topic.
        schema: The event schema of the topic's records.
        partitions: The partitions this worker owns (default: all).
        max_records: The largest micro-batch.
        quality: What the topic's events must satisfy beyond their schema; records that
            break it are dead-lettered with the reason.
        derive: Adds computed columns (keys such as card|device) to a decoded batch; with
            it, every field of the schema is decoded.
    """

    def __init__(
        self,
        *,
        engine: OnlineEngine,
        log: EventLog,
        topic: str,
        schema: type[Event],
        partitions: Sequence[int] | None = None,
        max_records: int = 5000,
        quality: Expectations | None = None,
        derive: Callable[[dict[str, np.ndarray]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.derive = derive
        self.quality = quality
        self.log = log
        self.topic = topic
        self.codec = Codec(schema)
        self.partitions = list(
            partitions if partitions is not None else range(log.partitions(topic))
        )
        self.max_records = max_records
        self.dlq = DeadLetterQueue(log, topic)
        needed = {c for v in engine.views_of(topic) for c in v.columns}
        if derive is not None:
            needed = set(schema.__struct_fields__)
        self.fields = sorted(needed | (quality.fields if quality is not None else set()))
        self.stats = WorkerStats()

    def run_once(self) -> int:
        """Process at most one micro-batch per partition; return how many records it read."""
        total = 0
        for p in self.partitions:
            tp = TopicPartition(self.topic, p)
            records = self.log.read(tp, self.engine.offset(tp), max_records=self.max_records)
            if records:
                self._process(tp, records)
                total += len(records)
        return total

    def _process(self, tp: TopicPartition, records: list[Record]) -> None:
        before = len(records)
        decoded = decode_or_dead_letter(records, self.codec, self.dlq)
        self.stats.invalid += before - len(decoded)
        decoded, columns = self._screen(decoded, to_columns([e for _, e in decoded], self.fields))
        if self.derive is not None:
            columns = dict(columns)
            self.derive(columns)
        offsets = np.array([r.offset for r, _ in decoded], dtype=np.int64)
        late = self.engine.apply_many(
            columns, partition=tp.partition, positions=(tp.topic, offsets)
        )
        failures = late_letters([r for r, _ in decoded], late)
        self.dlq.send_many(failures)  # durable before the offsets move on: nothing lost
        self.engine.commit(tp.partition, offsets={tp: records[-1].offset + 1})
        self.stats.late += len(failures)
        self.stats.events += len(decoded)
        self.stats.batches += 1
        self.stats.per_partition[tp.partition] = (
            self.stats.per_partition.get(tp.partition, 0) + before
        )

    def _screen(
        self, decoded: list[tuple[Record, Any]], columns: Columns
    ) -> tuple[list[tuple[Record, Any]], Columns]:
        """Dead-letter the records that break the topic's expectations; the rest go on."""
        if self.quality is None or not decoded:
            return decoded, columns
        reasons, batch = self.quality.check(columns)
        self.stats.quality = batch
        bad = [i for i, r in enumerate(reasons) if r is not None]
        if not bad:
            return decoded, columns
        failures: list[tuple[Record, Exception]] = []
        for i in bad:
            name, reason = reasons[i]  # type: ignore[misc]
            failures.append((decoded[i][0], DataQualityError(reason)))
            self.stats.violations[name] = self.stats.violations.get(name, 0) + 1
        self.dlq.send_many(failures)
        keep = np.ones(len(decoded), dtype=bool)
        keep[bad] = False
        kept = [d for d, k in zip(decoded, keep.tolist(), strict=True) if k]
        return kept, {c: np.asarray(v)[keep] for c, v in columns.items()}

    def run(self, *, until: Callable[[], bool] | None = None, idle_sleep_s: float = 0.05) -> None:
        """Process micro-batches until ``until()`` is true (forever by default)."""
        while until is None or not until():
            if self.run_once() == 0:
                time.sleep(idle_sleep_s)

    def caught_up(self) -> bool:
        """Whether every owned partition is processed to its end."""
        return all(
            self.engine.offset(TopicPartition(self.topic, p))
            >= self.log.end_offset(TopicPartition(self.topic, p))
            for p in self.partitions
        )


def late_letters(
    records: Sequence[Record], late: dict[str, npt.NDArray[np.bool_]]
) -> list[tuple[Record, Exception]]:
    out: list[tuple[Record, Exception]] = []
    for i, record in enumerate(records):
        views = [name for name, mask in late.items() if len(mask) and mask[i]]  # name@version
        if views:
            error = LateEventError(
                f"Event at {record.timestamp_ms} ms ({record.topic}[{record.partition}] offset "
                f"{record.offset}) is older than the watermark minus the allowed lateness, or "
                f"further ahead of the clock than allowed, for views {views}: sent here "
                "instead of being aggregated."
            )
            out.append((record, error))
    return out
