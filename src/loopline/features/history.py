"""Offline history from the event log: the records of a topic as a columnar table.

The table carries each record's ``_partition`` and ``_offset``, so the offline engine
replays each partition's watermark exactly as the online engine saw it, and
``_arrival_ms`` (here the record's log timestamp, the event time: archived history is
taken as having arrived on time). ``write_history`` stores it as Parquet for backfills.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.events import Codec, Event, EventLog, TopicPartition
from loopline.exceptions import SchemaError
from loopline.features.worker import to_columns


def history_table(
    log: EventLog, topic: str, schema: type[Event], fields: list[str], *, batch: int = 50_000
) -> pa.Table:
    """Every valid record of ``topic`` (invalid ones are skipped: they are dead letters)."""
    codec = Codec(schema)
    parts = []
    for p in range(log.partitions(topic)):
        tp = TopicPartition(topic, p)
        offset, end = 0, log.end_offset(tp)
        while offset < end:
            records = log.read(tp, offset, max_records=batch)
            if not records:
                break
            offset = records[-1].offset + 1
            events, kept = [], []
            for r in records:
                try:
                    events.append(codec.decode(r.value))
                    kept.append(r)
                except SchemaError:
                    continue
            if not events:
                continue
            cols = dict(to_columns(events, fields))
            cols["_partition"] = np.full(len(kept), p, dtype=np.int64)
            cols["_offset"] = np.array([r.offset for r in kept], dtype=np.int64)
            cols["_arrival_ms"] = np.array([r.timestamp_ms for r in kept], dtype=np.int64)
            parts.append(pa.table(cols))
    if not parts:
        raise SchemaError(f"Topic {topic!r} holds no valid {schema.__name__} records to archive.")
    return pa.concat_tables(parts)


def write_history(table: pa.Table, path: str | Path) -> None:
    """Write a history table as one Parquet file (zstd)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
