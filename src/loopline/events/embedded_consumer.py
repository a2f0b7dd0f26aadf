"""Consumer groups on the embedded log, coordinated through the log's own SQLite file.

Members heartbeat into a table; every member computes the same round-robin split of the
partitions from the sorted list of live members; a member silent for the session
timeout is dropped by the others. Commits are fenced by the split: a member cannot
commit a partition it no longer owns, whose next owner re-delivers (at-least-once).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from loopline.events.base import OffsetReset, Record, TopicPartition
from loopline.events.logfile import LogFile, now_ms
from loopline.events.partitioning import assign_round_robin
from loopline.exceptions import ConfigError, EventLogError

if TYPE_CHECKING:
    from loopline.events.embedded import EmbeddedLog


class EmbeddedConsumer:
    """A consumer-group member on an :class:`EmbeddedLog` file (see the module docs)."""

    _IDLE_SLEEP_S = 0.005

    def __init__(
        self,
        log: EmbeddedLog,
        group: str,
        topics: Sequence[str],
        *,
        offset_reset: OffsetReset,
        session_timeout_s: float,
    ) -> None:
        if session_timeout_s <= 0:
            raise ConfigError(f"'session_timeout_s' must be > 0. Got {session_timeout_s!r}.")
        self.group = group
        self.member = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._file = LogFile(log.path, durability=log.durability, busy_timeout_s=log.busy_timeout_s)
        with self._file.lock:
            self._partitions = [
                TopicPartition(t, p)
                for t in sorted(set(topics))
                for p in range(self._file.topic(t)[1])
            ]
        self._offset_reset = offset_reset
        self._session_ms = int(session_timeout_s * 1000)
        self._last_heartbeat_ms = 0
        self._positions: dict[TopicPartition, int] = {}
        self._dirty: set[TopicPartition] = set()
        self._next = 0

    def _members(self, conn: sqlite3.Connection, now: int) -> list[str]:
        if now - self._last_heartbeat_ms > self._session_ms // 5:
            conn.execute(
                "INSERT OR REPLACE INTO group_members VALUES (?, ?, ?)",
                (self.group, self.member, now),
            )
            conn.execute(
                "DELETE FROM group_members WHERE grp = ? AND heartbeat_ms < ?",
                (self.group, now - self._session_ms),
            )
            self._last_heartbeat_ms = now
        rows = conn.execute("SELECT member FROM group_members WHERE grp = ?", (self.group,))
        return [m for (m,) in rows]

    def _rebalance(self) -> None:
        with self._file.lock:
            conn = self._file.conn
            owned = assign_round_robin(self._partitions, self._members(conn, now_ms()), self.member)
            for tp in list(self._positions):
                if tp not in owned:
                    del self._positions[tp]
                    self._dirty.discard(tp)
            for tp in owned:
                if tp not in self._positions:
                    self._positions[tp] = self._start_offset(conn, tp)

    def _start_offset(self, conn: sqlite3.Connection, tp: TopicPartition) -> int:
        row = conn.execute(
            "SELECT offset FROM group_offsets WHERE grp = ? AND topic = ? AND partition = ?",
            (self.group, tp.topic, tp.partition),
        ).fetchone()
        if row is not None:
            return int(row[0])
        return 0 if self._offset_reset == "earliest" else self._file.end_offset(tp)

    def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        deadline = time.monotonic() + timeout_s
        while True:
            self._rebalance()
            records = self._fetch(max_records)
            if records or time.monotonic() >= deadline:
                return records
            time.sleep(min(self._IDLE_SLEEP_S, max(0.0, deadline - time.monotonic())))

    def _fetch(self, max_records: int) -> list[Record]:
        owned = sorted(self._positions)
        out: list[Record] = []
        with self._file.lock:
            for i in range(len(owned)):  # start at a rotating partition for fairness
                tp = owned[(self._next + i) % len(owned)]
                batch = self._file.read(tp, self._positions[tp], max_records - len(out))
                if batch:
                    self._positions[tp] = batch[-1].offset + 1
                    self._dirty.add(tp)
                    out.extend(batch)
                if len(out) >= max_records:
                    break
        self._next += 1
        return out

    def commit(self) -> None:
        if not self._dirty:
            return
        with self._file.lock:
            conn = self._file.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                owned = set(
                    assign_round_robin(self._partitions, self._members(conn, now_ms()), self.member)
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO group_offsets VALUES (?, ?, ?, ?)",
                    [
                        (self.group, tp.topic, tp.partition, self._positions[tp])
                        for tp in self._dirty
                        if tp in owned
                    ],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._dirty.clear()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._positions:
            raise EventLogError(
                f"Cannot seek {tp.topic}[{tp.partition}]: member {self.member} of group "
                f"{self.group!r} does not own it. Poll first, and seek within assignment()."
            )
        self._positions[tp] = offset
        self._dirty.add(tp)

    def assignment(self) -> list[TopicPartition]:
        return sorted(self._positions)

    def close(self) -> None:
        with self._file.lock:
            self._file.conn.execute(
                "DELETE FROM group_members WHERE grp = ? AND member = ?", (self.group, self.member)
            )
        self._file.close()
