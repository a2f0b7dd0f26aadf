"""The embedded event log: a SQLite file in WAL mode, no server.

Each partition is its own rowid table keyed by offset, so an append is a sequential
insert and a read is a range scan (a WITHOUT ROWID table keyed by (topic, partition,
offset) measured 5x slower here). One append is one transaction: when
:meth:`EmbeddedLog.append_many` returns, the records survive ``kill -9`` of the
process (``durability="process"``, SQLite ``synchronous=NORMAL``) or a power loss too
(``durability="power"``, ``synchronous=FULL``).

Consumer groups are coordinated through the same file: members heartbeat into a table,
every member computes the same round-robin split of the partitions from the live
members, and committed offsets are fenced by that split. Any number of processes on
one machine may share a log file.

The file itself (schema, connection, partition tables, range reads) is
:mod:`loopline.events.logfile`'s, shared with the consumers
(:mod:`loopline.events.embedded_consumer`).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from loopline.events.base import Consumer, Message, OffsetReset, Record, TopicPartition
from loopline.events.embedded_consumer import EmbeddedConsumer
from loopline.events.logfile import Durability, LogFile, now_ms
from loopline.events.partitioning import partition_for
from loopline.events.topics import check_same_layout, check_topic
from loopline.exceptions import ConfigError

__all__ = ["Durability", "EmbeddedLog"]


class EmbeddedLog:
    """A durable event log in one SQLite file.

    Args:
        path: The log file; created with its folder when missing.
        durability: ``"process"`` survives a crash of the process, ``"power"`` also a
            power loss (each append waits for fsync; slower).
        busy_timeout_s: How long a writer waits for another writer's lock.

    Example:
        >>> import tempfile
        >>> log = EmbeddedLog(tempfile.mkdtemp() + "/events.db")
        >>> log.create_topic("payments", partitions=2)
        >>> log.append_many("payments", [Message(b"{}", key=b"card-1")])
        [(1, 0)]
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "process",
        busy_timeout_s: float = 10.0,
    ) -> None:
        if durability not in ("process", "power"):
            raise ConfigError(
                f"EmbeddedLog 'durability' must be 'process' or 'power'. Got {durability!r}."
            )
        self.path = Path(path)
        self.durability = durability
        self.busy_timeout_s = busy_timeout_s
        self._file = LogFile(self.path, durability=durability, busy_timeout_s=busy_timeout_s)
        self.url = self._file.url
        self._round_robin: dict[str, int] = defaultdict(int)

    # -- topics ---------------------------------------------------------------------------

    def create_topic(self, topic: str, *, partitions: int = 1) -> None:
        check_topic(topic, partitions=partitions)
        with self._file.lock:
            conn = self._file.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT partitions FROM topics WHERE name = ?", (topic,)
                ).fetchone()
                if row is None:
                    (next_id,) = conn.execute(
                        "SELECT coalesce(max(id), 0) + 1 FROM topics"
                    ).fetchone()
                    conn.execute(
                        "INSERT INTO topics VALUES (?, ?, ?)", (topic, next_id, partitions)
                    )
                    for p in range(partitions):
                        conn.execute(
                            f"CREATE TABLE p{next_id}_{p} (offset INTEGER PRIMARY KEY, "
                            "ts INTEGER NOT NULL, max_ts INTEGER NOT NULL, key BLOB, "
                            "value BLOB NOT NULL)"
                        )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if row is not None:
            check_same_layout(topic, self.url, row[0], partitions)

    def partitions(self, topic: str) -> int:
        with self._file.lock:
            return self._file.topic(topic)[1]

    # -- append and read ------------------------------------------------------------------

    def append_many(self, topic: str, messages: Sequence[Message]) -> list[tuple[int, int]]:
        with self._file.lock:
            topic_id, partitions = self._file.topic(topic)
            by_partition: dict[int, list[int]] = defaultdict(list)
            start = self._round_robin[topic]
            for i, message in enumerate(messages):
                key = message.key
                p = partition_for(key, partitions) if key is not None else (start + i) % partitions
                by_partition[p].append(i)
            self._round_robin[topic] = start + len(messages)
            positions: list[tuple[int, int]] = [(0, 0)] * len(messages)
            now = now_ms()
            conn = self._file.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for p, indices in by_partition.items():
                    table = f"p{topic_id}_{p}"
                    last = conn.execute(
                        f"SELECT offset, max_ts FROM {table} ORDER BY offset DESC LIMIT 1"
                    ).fetchone()
                    offset, max_ts = (last[0] + 1, last[1]) if last else (0, 0)
                    rows = []
                    for i in indices:
                        m = messages[i]
                        ts = now if m.timestamp_ms is None else m.timestamp_ms
                        max_ts = max(max_ts, ts)
                        rows.append((offset, ts, max_ts, m.key, m.value))
                        positions[i] = (p, offset)
                        offset += 1
                    conn.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return positions

    def read(self, tp: TopicPartition, offset: int, *, max_records: int = 1000) -> list[Record]:
        with self._file.lock:
            return self._file.read(tp, offset, max_records)

    def end_offset(self, tp: TopicPartition) -> int:
        with self._file.lock:
            return self._file.end_offset(tp)

    def offset_for_time(self, tp: TopicPartition, timestamp_ms: int) -> int:
        with self._file.lock:
            table = self._file.table(tp)
            lo, hi = 0, self._file.end_offset(tp)
            while lo < hi:  # first offset whose running-max timestamp reaches timestamp_ms
                mid = (lo + hi) // 2
                (max_ts,) = self._file.conn.execute(
                    f"SELECT max_ts FROM {table} WHERE offset = ?", (mid,)
                ).fetchone()
                lo, hi = (mid + 1, hi) if max_ts < timestamp_ms else (lo, mid)
            return lo

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        offset_reset: OffsetReset = "earliest",
        session_timeout_s: float = 10.0,
    ) -> Consumer:
        return EmbeddedConsumer(
            self, group, topics, offset_reset=offset_reset, session_timeout_s=session_timeout_s
        )

    def close(self) -> None:
        self._file.close()
