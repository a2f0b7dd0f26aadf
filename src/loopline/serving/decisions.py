"""The prediction log: every decision with the features and model that made it.

Writes are batched off the request path by one writer thread (group commit): a request
hands its row over and awaits the commit of the batch that carries it, so many requests
share one fsync. The guarantee: a decision is returned to its caller only after the
transaction holding it committed, so it survives a ``kill -9`` of the service (SQLite in
WAL mode; ``synchronous=FULL`` extends that to power loss). Review and decline decisions
are then published to the notifications topic.

The same table answers idempotency: a transaction id (or Idempotency-Key) already decided
returns the stored response.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    idempotency_key TEXT PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    decided_ms INTEGER NOT NULL,
    decision TEXT NOT NULL,
    score REAL NOT NULL,
    model_version TEXT NOT NULL,
    arm TEXT NOT NULL,
    rules_version TEXT NOT NULL,
    shadow_model TEXT,
    shadow_score REAL,
    card_token TEXT NOT NULL,
    features BLOB NOT NULL,
    response BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_tx ON decisions (transaction_id);
"""
COLUMNS = (
    "idempotency_key", "transaction_id", "payload_sha256", "decided_ms", "decision", "score",
    "model_version", "arm", "rules_version", "shadow_model", "shadow_score", "card_token",
    "features", "response",
)  # fmt: skip


@dataclass(frozen=True)
class Stored:
    """What idempotency needs of an earlier decision."""

    payload_sha256: str
    response: bytes


class DecisionLog:
    """SQLite prediction log with group commit.

    Args:
        path: The database file.
        notify: Called after each commit with the committed rows (e.g. publish review and
            decline decisions); a failure there is counted, never lost silently.
        max_batch: The most rows one commit carries.
        synchronous: SQLite's ``synchronous`` (NORMAL: survives process crashes; FULL:
            power loss too).
    """

    def __init__(
        self,
        path: Path,
        *,
        notify: Callable[[Sequence[dict[str, Any]]], None] | None = None,
        max_batch: int = 512,
        synchronous: str = "NORMAL",
    ) -> None:
        self.path = path
        self.notify = notify
        self.max_batch = max_batch
        self.notify_failures = 0
        self.commits = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._read = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._read.execute("PRAGMA journal_mode=WAL")
        self._read.executescript(SCHEMA)
        self._read_lock = threading.Lock()
        self._queue: queue.Queue[
            tuple[dict[str, Any], Callable[[BaseException | None], None]] | None
        ] = queue.Queue()
        self._synchronous = synchronous
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    def find(self, key: str) -> Stored | None:
        """The stored decision under an idempotency key (or transaction id)."""
        with self._read_lock:
            row = self._read.execute(
                "SELECT payload_sha256, response FROM decisions WHERE idempotency_key = ?", (key,)
            ).fetchone()
        return Stored(row[0], row[1]) if row else None

    async def write(self, row: dict[str, Any]) -> None:
        """Hand ``row`` to the writer and return once it is committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def resolve(error: BaseException | None) -> None:
            if error is None:
                loop.call_soon_threadsafe(_settle, done, None)
            else:
                loop.call_soon_threadsafe(_settle, done, error)

        self._queue.put((row, resolve))
        await done

    def write_sync(self, rows: Sequence[dict[str, Any]]) -> None:
        """Commit ``rows`` from a non-async caller (the streaming scorer)."""
        events = [threading.Event() for _ in rows]
        errors: list[BaseException] = []
        for row, event in zip(rows, events, strict=True):

            def resolve(error: BaseException | None, event: threading.Event = event) -> None:
                if error is not None:
                    errors.append(error)
                event.set()

            self._queue.put((row, resolve))
        for event in events:
            event.wait()
        if errors:
            raise errors[0]

    def count(self) -> int:
        with self._read_lock:
            return int(self._read.execute("SELECT count(*) FROM decisions").fetchone()[0])

    def close(self) -> None:
        """Commit what is queued, then stop (again: nothing)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)
        self._read.close()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        sql = (
            f"INSERT OR IGNORE INTO decisions ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(COLUMNS))})"
        )
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            rows = [r for r, _ in batch]
            try:
                conn.execute("BEGIN")
                conn.executemany(sql, [tuple(r[c] for c in COLUMNS) for r in rows])
                conn.execute("COMMIT")
                error: BaseException | None = None
                self.commits += 1
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                error = exc
            for _, resolve in batch:
                resolve(error)
            if error is None and self.notify is not None:
                try:
                    self.notify(rows)
                except Exception:
                    self.notify_failures += 1
        conn.close()


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def now_ms() -> int:
    return int(time.time() * 1000)
