"""The prediction log in SQLite (the embedded default), labels in the same file.

WAL mode: a committed batch survives a ``kill -9`` of the process
(``synchronous=FULL`` extends that to power loss). WAL checkpoints, which copy the log
into the database file and wait for the disk, run in a thread of their own
(:class:`Checkpointer`) instead of inside a commit (measured: a checkpoint in a commit
held the event loop 30-100 ms every few seconds, past the request budget). Reads other
than idempotency lookups open a connection of their own: they are called from side
workers' threads while the event loop writes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path

from loopline.predictions import sql
from loopline.predictions.base import (
    Column,
    Joined,
    Keep,
    Label,
    Notify,
    Recent,
    Row,
    ShadowPairs,
    Stored,
    check_columns,
    segment_of,
)
from loopline.predictions.commit import GroupCommit


class SqliteLog(GroupCommit):
    """Predictions and their labels in one SQLite file.

    Args:
        path: The database file.
        columns: The application's own columns.
        notify: Called after each commit with its rows (see :class:`GroupCommit`).
        synchronous: SQLite's ``synchronous`` (NORMAL: survives process crashes; FULL:
            power loss too).
    """

    errors = (sqlite3.Error,)

    def __init__(
        self,
        path: Path,
        *,
        columns: Sequence[Column] = (),
        notify: Notify | None = None,
        synchronous: str = "NORMAL",
    ) -> None:
        super().__init__(notify)
        self.path = path
        self.columns = check_columns(columns)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._conn.execute("PRAGMA wal_autocheckpoint=0")  # see Checkpointer
        self._conn.execute(f"PRAGMA journal_size_limit={64 << 20}")
        self._conn.executescript(sql.schema(self.columns))
        self._checkpointer = Checkpointer(path)
        self._insert_sql = sql.insert(self.columns)
        self._labels_lock = threading.Lock()

    def find(self, key: str) -> Stored | None:
        row = self._conn.execute(sql.FIND, (key,)).fetchone()
        return Stored(row[0], row[1]) if row else None

    def count(self) -> int:
        return int(self._conn.execute(sql.COUNT).fetchone()[0])

    def keys_of(self, column: str, value: str) -> list[tuple[str, str]]:
        """(request id, routing key) of the rows whose declared ``column`` is ``value``."""
        query = sql.keys_of(column, self.columns)
        with self._reader() as conn:
            return [(str(a), str(b)) for a, b in conn.execute(query, (value,)).fetchall()]

    def recent(
        self, limit: int, *, model_version: str | None = None, since_ms: int | None = None
    ) -> list[Recent]:
        query, args = sql.recent(model_version, since_ms)
        with self._reader() as conn:
            rows = conn.execute(query, (*args, limit)).fetchall()
        return [Recent(bytes(i), bytes(o)) for i, o in rows]

    def add_labels(
        self, labels: Iterable[Label], *, keep: Keep = "latest",
        position: tuple[str, int, int] | None = None,
    ) -> int:  # fmt: skip
        rows = [(x.request_id, x.subject, float(x.value), x.label_time_ms) for x in labels]
        with self._labels_lock, self._reader(timeout=30.0) as conn:
            conn.execute("BEGIN IMMEDIATE")
            if position is not None:
                conn.execute(sql.UPSERT_POSITION, position)
            before = conn.total_changes
            conn.executemany(sql.upsert_label(keep), rows)
            changed = conn.total_changes - before
            conn.execute("COMMIT")
        return changed

    def label_offset(self, topic: str, partition: int) -> int:
        with self._reader() as conn:
            row = conn.execute(sql.POSITION, (topic, partition)).fetchone()
        return int(row[0]) if row else 0

    def joined(
        self, *, decided_from_ms: int = 0, decided_until_ms: int = 2**62,
        labelled_before_ms: int = 2**62, model_version: str | None = None,
        segment: str | None = None,
    ) -> Joined:  # fmt: skip
        by, input_name = segment_of(segment, self.columns)
        args: list[int | str] = [labelled_before_ms, decided_from_ms, decided_until_ms]
        if model_version is not None:
            args.append(model_version)
        with self._reader() as conn:
            rows = conn.execute(
                sql.joined(by, model_version, inputs=input_name is not None), args
            ).fetchall()
        return sql.group_joined(rows, input_name)

    def shadow_pairs(
        self, challenger: str, *, labelled_before_ms: int, decided_before_ms: int = 2**62
    ) -> ShadowPairs:
        with self._reader() as conn:
            rows = conn.execute(
                sql.SHADOW_PAIRS, (labelled_before_ms, challenger, decided_before_ms)
            ).fetchall()
            calls, errors = conn.execute(
                sql.SHADOW_CALLS, (challenger, decided_before_ms)
            ).fetchone()
        return sql.group_pairs(rows, calls, errors)

    def erase(self, values: Collection[str]) -> int:
        """Delete the predictions whose routing key or request id is one of ``values``
        and their labels (erasure); return how many rows. Deleted with
        ``secure_delete`` (bytes zeroed) and the WAL truncated after, so no copy stays
        on disk."""
        if not values:
            return 0
        array = json.dumps(sorted(values))
        labels, predictions = sql.erase()
        with self._labels_lock, self._reader(timeout=30.0) as conn:
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("BEGIN IMMEDIATE")
            removed = conn.execute(labels, (array,) * 3).rowcount
            removed += conn.execute(predictions, (array,) * 2).rowcount
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def expire(self, older_than_ms: int, *, limit: int = 10_000) -> int:
        """Delete up to ``limit`` predictions decided before ``older_than_ms``, oldest
        first (retention); return how many."""
        return self._expire(sql.EXPIRE_PREDICTIONS, older_than_ms, limit)

    def expire_labels(self, older_than_ms: int, *, limit: int = 10_000) -> int:
        """Delete up to ``limit`` labels that arrived before ``older_than_ms``."""
        return self._expire(sql.EXPIRE_LABELS, older_than_ms, limit)

    def _expire(self, query: str, older_than_ms: int, limit: int) -> int:
        with self._labels_lock, self._reader(timeout=30.0) as conn:
            conn.execute("PRAGMA secure_delete=ON")
            return conn.execute(query, (older_than_ms, limit)).rowcount

    @contextlib.contextmanager
    def _reader(self, timeout: float = 5.0) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=timeout)
        try:
            yield conn
        finally:
            conn.close()

    def _insert(self, rows: Sequence[Row]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN")
            conn.executemany(self._insert_sql, sql.values(rows, self.columns))
            conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _disconnect(self) -> None:
        self._checkpointer.stop()
        self._conn.close()


class Checkpointer:
    """Checkpoints a SQLite WAL database every ``every_s`` from a thread with its own
    connection. PASSIVE: it copies what no reader still needs and never blocks the writer
    (SQLite releases the GIL while it waits for the disk)."""

    def __init__(self, path: Path, every_s: float = 1.0) -> None:
        self.path, self.every_s = path, every_s
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
            while not self._stop.wait(self.every_s):
                self.checkpoint(conn)
            self.checkpoint(conn)  # the last one: the database file whole on a clean close

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.OperationalError:  # busy: the next one catches up
            return
        self.checkpoints += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
