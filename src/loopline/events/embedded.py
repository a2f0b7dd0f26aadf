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
from collections.abc import Callable, Sequence
from pathlib import Path

from loopline.events.base import Consumer, Message, OffsetReset, Record, TopicPartition
from loopline.events.embedded_consumer import EmbeddedConsumer
from loopline.events.logfile import Durability, LogFile, now_ms
from loopline.events.partitioning import partition_for
from loopline.events.topics import check_same_layout, check_topic
from loopline.exceptions import ConfigError

__all__ = ["Durability", "EmbeddedLog"]

_SCAN_BATCH = 5000  # records read at a time while erasure looks for a subject's


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
                        f"SELECT max_ts FROM {table} ORDER BY offset DESC LIMIT 1"
                    ).fetchone()
                    offset, max_ts = self._file.next_offset(table), last[0] if last else 0
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
            return self._offset_for_time(tp, timestamp_ms)

    def _offset_for_time(self, tp: TopicPartition, timestamp_ms: int) -> int:
        table = self._file.table(tp)
        lo, hi = 0, self._file.end_offset(tp)
        while lo < hi:  # first offset whose running-max timestamp reaches timestamp_ms
            mid = (lo + hi) // 2
            # the first record at or after mid: erasure and retention leave gaps
            row = self._file.conn.execute(
                f"SELECT max_ts FROM {table} WHERE offset >= ? ORDER BY offset LIMIT 1", (mid,)
            ).fetchone()
            lo, hi = (mid + 1, hi) if row is not None and row[0] < timestamp_ms else (lo, mid)
        return lo

    # -- erasure and retention -----------------------------------------------------------

    def erase(self, matches: Callable[[Record], bool], *, topics: Sequence[str] = ()) -> int:
        """Delete every record of ``topics`` (all topics when empty) that ``matches``;
        return how many.

        The rows are deleted with SQLite's ``secure_delete`` (their bytes zeroed in the
        file) and the WAL truncated after, so no copy is left on disk. Offsets stay where
        they were: the others keep theirs, the gap is never filled, and a consumer whose
        stored offset falls in it reads on from the next record (as on a compacted
        Kafka topic).
        """
        erased = 0
        with self._file.lock:
            for tp, table in self._file.tables():
                if topics and tp.topic not in topics:
                    continue
                found, offset = [], 0
                while batch := self._file.read(tp, offset, _SCAN_BATCH):
                    found += [r.offset for r in batch if matches(r)]
                    offset = batch[-1].offset + 1
                erased += self._delete(table, found)
            self._file.purge()
        return erased

    def expire(self, older_than_ms: int, *, topics: Sequence[str] = (), limit: int = 10_000) -> int:
        """Delete up to ``limit`` records of ``topics`` (all when empty) older than
        ``older_than_ms``, oldest first; return how many (``limit``: bounded work per
        call; call again while it returns ``limit``).

        "Older" is by the running maximum of record times, as Kafka's time-based
        retention deletes a segment whose newest record is old: the deleted records are
        always a prefix of the partition, so readers never see a hole open behind them.
        """
        expired = 0
        with self._file.lock:
            for tp, table in self._file.tables():
                if (topics and tp.topic not in topics) or expired >= limit:
                    continue
                cutoff = self._offset_for_time(tp, older_than_ms)
                rows = self._file.conn.execute(
                    f"SELECT offset FROM {table} WHERE offset < ? ORDER BY offset LIMIT ?",
                    (cutoff, limit - expired),
                ).fetchall()
                expired += self._delete(table, [o for (o,) in rows])
            if expired:
                self._file.purge()
        return expired

    def _delete(self, table: str, offsets: list[int]) -> int:
        if not offsets:
            return 0
        conn = self._file.conn
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._file.delete(table, offsets)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.execute("PRAGMA secure_delete=OFF")
        return len(offsets)

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
