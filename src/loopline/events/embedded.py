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
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from loopline.events.base import Consumer, Message, OffsetReset, Record, TopicPartition
from loopline.events.partitioning import partition_for
from loopline.events.topics import (
    check_partition,
    check_same_layout,
    check_topic,
    topic_not_found,
)
from loopline.exceptions import (
    BackendUnavailableError,
    ConfigError,
)

Durability = Literal["process", "power"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY, id INTEGER NOT NULL UNIQUE, partitions INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS group_members (
    grp TEXT NOT NULL, member TEXT NOT NULL, heartbeat_ms INTEGER NOT NULL,
    PRIMARY KEY (grp, member)
);
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, partition)
);
"""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _connect(path: Path, durability: Durability, busy_timeout_s: float) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'power' else 'NORMAL'}")
    return conn


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
        self.url = f"file://{self.path.resolve()}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = _connect(self.path, durability, busy_timeout_s)
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailableError(
                f"Cannot open the embedded event log at {self.path}: {exc}. "
                "Give a path in a writable folder."
            ) from None
        self._lock = threading.Lock()
        self._topics: dict[str, tuple[int, int]] = {}
        self._round_robin: dict[str, int] = defaultdict(int)

    # -- topics ---------------------------------------------------------------------------

    def create_topic(self, topic: str, *, partitions: int = 1) -> None:
        check_topic(topic, partitions=partitions)
        with self._lock:
            conn = self._conn
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

    def _topic(self, topic: str) -> tuple[int, int]:
        found = self._topics.get(topic)
        if found is None:
            row = self._conn.execute(
                "SELECT id, partitions FROM topics WHERE name = ?", (topic,)
            ).fetchone()
            if row is None:
                raise topic_not_found(topic, self.url)
            found = self._topics[topic] = (row[0], row[1])
        return found

    def partitions(self, topic: str) -> int:
        with self._lock:
            return self._topic(topic)[1]

    def _table(self, tp: TopicPartition) -> str:
        topic_id, partitions = self._topic(tp.topic)
        check_partition(tp.topic, tp.partition, partitions)
        return f"p{topic_id}_{tp.partition}"

    # -- append and read ------------------------------------------------------------------

    def append_many(self, topic: str, messages: Sequence[Message]) -> list[tuple[int, int]]:
        with self._lock:
            topic_id, partitions = self._topic(topic)
            by_partition: dict[int, list[int]] = defaultdict(list)
            start = self._round_robin[topic]
            for i, message in enumerate(messages):
                key = message.key
                p = partition_for(key, partitions) if key is not None else (start + i) % partitions
                by_partition[p].append(i)
            self._round_robin[topic] = start + len(messages)
            positions: list[tuple[int, int]] = [(0, 0)] * len(messages)
            now = _now_ms()
            conn = self._conn
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
        with self._lock:
            return _read(self._conn, self._table(tp), tp, offset, max_records)

    def end_offset(self, tp: TopicPartition) -> int:
        with self._lock:
            return _end_offset(self._conn, self._table(tp))

    def offset_for_time(self, tp: TopicPartition, timestamp_ms: int) -> int:
        with self._lock:
            table = self._table(tp)
            lo, hi = 0, _end_offset(self._conn, table)
            while lo < hi:  # first offset whose running-max timestamp reaches timestamp_ms
                mid = (lo + hi) // 2
                (max_ts,) = self._conn.execute(
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
        from loopline.events.embedded_consumer import EmbeddedConsumer

        return EmbeddedConsumer(
            self, group, topics, offset_reset=offset_reset, session_timeout_s=session_timeout_s
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _read(
    conn: sqlite3.Connection, table: str, tp: TopicPartition, offset: int, limit: int
) -> list[Record]:
    rows = conn.execute(
        f"SELECT offset, ts, key, value FROM {table} WHERE offset >= ? ORDER BY offset LIMIT ?",
        (offset, limit),
    ).fetchall()
    return [Record(tp.topic, tp.partition, o, ts, k, v) for o, ts, k, v in rows]


def _end_offset(conn: sqlite3.Connection, table: str) -> int:
    row = conn.execute(f"SELECT offset FROM {table} ORDER BY offset DESC LIMIT 1").fetchone()
    return 0 if row is None else int(row[0]) + 1
