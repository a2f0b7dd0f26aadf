"""One connection to an embedded event log's SQLite file, shared by the log and its consumers.

The file holds a table of topics, the consumer groups' members and committed offsets, and
one rowid table per partition keyed by offset (``p<topic id>_<partition>``), so an append
is a sequential insert and a read is a range scan. :class:`LogFile` opens the file (WAL
mode, creating the tables when missing), resolves topic partitions to their tables and
reads them; :class:`loopline.events.EmbeddedLog` appends, and
:class:`loopline.events.embedded_consumer.EmbeddedConsumer` coordinates its group, each
through a ``LogFile`` of its own.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Literal

from loopline.events.base import Record, TopicPartition
from loopline.events.topics import check_partition, topic_not_found
from loopline.exceptions import BackendUnavailableError

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
CREATE TABLE IF NOT EXISTS partition_ends (tbl TEXT PRIMARY KEY, next_offset INTEGER NOT NULL);
"""


def now_ms() -> int:
    """Wall-clock time in milliseconds: default record timestamps and member heartbeats."""
    return time.time_ns() // 1_000_000


class LogFile:
    """A connection to the log file at ``path`` and the lock that serialises its use.

    The connection is shared by the threads of its owner: hold :attr:`lock` around every
    use of :attr:`conn` and of the methods below.
    """

    def __init__(self, path: Path, *, durability: Durability, busy_timeout_s: float) -> None:
        self.path = path
        self.url = f"file://{path.resolve()}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'power' else 'NORMAL'}")
            self.conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailableError(
                f"Cannot open the embedded event log at {path}: {exc}. "
                "Give a path in a writable folder."
            ) from None
        self.lock = threading.Lock()
        self._topics: dict[str, tuple[int, int]] = {}

    def topic(self, topic: str) -> tuple[int, int]:
        """The topic's (id, partition count); a topic's layout never changes, so cached."""
        found = self._topics.get(topic)
        if found is None:
            row = self.conn.execute(
                "SELECT id, partitions FROM topics WHERE name = ?", (topic,)
            ).fetchone()
            if row is None:
                raise topic_not_found(topic, self.url)
            found = self._topics[topic] = (row[0], row[1])
        return found

    def table(self, tp: TopicPartition) -> str:
        """The name of the partition's table (checked to exist)."""
        topic_id, partitions = self.topic(tp.topic)
        check_partition(tp.topic, tp.partition, partitions)
        return f"p{topic_id}_{tp.partition}"

    def read(self, tp: TopicPartition, offset: int, limit: int) -> list[Record]:
        """Up to ``limit`` records of ``tp`` from ``offset`` on."""
        rows = self.conn.execute(
            f"SELECT offset, ts, key, value FROM {self.table(tp)} "
            "WHERE offset >= ? ORDER BY offset LIMIT ?",
            (offset, limit),
        ).fetchall()
        return [Record(tp.topic, tp.partition, o, ts, k, v) for o, ts, k, v in rows]

    def end_offset(self, tp: TopicPartition) -> int:
        """The offset the next record of ``tp`` will get."""
        return self.next_offset(self.table(tp))

    def next_offset(self, table: str) -> int:
        """The offset after the partition's last record, or after the last one deleted
        (erasure, retention) if that was later: offsets are never given out twice."""
        row = self.conn.execute(
            f"SELECT offset FROM {table} ORDER BY offset DESC LIMIT 1"
        ).fetchone()
        end = self.conn.execute(
            "SELECT next_offset FROM partition_ends WHERE tbl = ?", (table,)
        ).fetchone()
        return max(0 if row is None else int(row[0]) + 1, 0 if end is None else int(end[0]))

    def delete(self, table: str, offsets: list[int]) -> None:
        """Delete records by offset, their bytes overwritten (``secure_delete``), keeping
        the partition's next offset; inside the caller's transaction."""
        self.conn.execute(
            "INSERT OR REPLACE INTO partition_ends VALUES (?, ?)", (table, self.next_offset(table))
        )
        self.conn.executemany(f"DELETE FROM {table} WHERE offset = ?", [(o,) for o in offsets])

    def tables(self) -> list[tuple[TopicPartition, str]]:
        """Every partition of every topic, with its table."""
        rows = self.conn.execute("SELECT name, id, partitions FROM topics ORDER BY name")
        return [(TopicPartition(n, p), f"p{i}_{p}") for n, i, ps in rows for p in range(ps)]

    def purge(self) -> bool:
        """Checkpoint the WAL into the database and truncate it, so that the page images
        of deleted records in the WAL are gone too. False when a reader held it back."""
        (busy, _, _) = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not busy

    def close(self) -> None:
        with self.lock:
            self.conn.close()
