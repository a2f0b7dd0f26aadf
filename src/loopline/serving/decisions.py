"""The prediction log: every decision with the features and model that made it.

Writes are group-committed: a request hands its row over and awaits the commit of the
batch that carries it, so concurrent requests share one commit. The guarantee: a
decision is returned to its caller only after the transaction holding it committed, so
it survives a ``kill -9`` of the service (SQLite in WAL mode; ``synchronous=FULL``
extends that to power loss). Review and decline decisions are then published to the
notifications topic.

The same table answers idempotency: a transaction id (or Idempotency-Key) already decided
returns the stored response.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from loopline.serving.scorer import Decided

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    idempotency_key TEXT PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    decided_ms INTEGER NOT NULL,
    decision TEXT NOT NULL,
    score REAL NOT NULL,
    model_score REAL,
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
CREATE INDEX IF NOT EXISTS decisions_decided ON decisions (decided_ms);
"""
SCHEMA_LOCK = 0x6C6F6F70  # PostgreSQL advisory lock key ("loop") held while creating SCHEMA
COLUMNS = (
    "idempotency_key", "transaction_id", "payload_sha256", "decided_ms", "decision", "score",
    "model_score", "model_version", "arm", "rules_version", "shadow_model", "shadow_score",
    "card_token", "features", "response",
)  # fmt: skip


def log_row(
    decided: Decided, key: str, fingerprint: str, body: bytes, decided_ms: int | None = None
) -> dict[str, Any]:
    """The prediction log's row of a decision (``body``: the response as sent;
    ``decided_ms``: when, if not now)."""
    r = decided.response
    return {
        "idempotency_key": key,
        "transaction_id": r.transaction_id,
        "payload_sha256": fingerprint,
        "decided_ms": now_ms() if decided_ms is None else decided_ms,
        "decision": r.decision,
        "score": r.score,
        "model_score": decided.model_score,
        "model_version": r.model_version,
        "arm": decided.arm,
        "rules_version": r.rules_version,
        "shadow_model": decided.shadow_model,
        "shadow_score": decided.shadow_score,
        "card_token": str(decided.columns["card_token"][0]),
        "features": msgspec.json.encode(decided.features),
        "response": body,
    }


@dataclass(frozen=True)
class Stored:
    """What idempotency needs of an earlier decision."""

    payload_sha256: str
    response: bytes


class DecisionLog:
    """SQLite prediction log with group commit on the event loop.

    Rows handed over during one turn of the event loop are committed together, right
    after it (``loop.call_soon``): no writer thread, so no lock hand-offs between the
    request path and the log (measured: a writer thread halved throughput through GIL
    switches on one core). WAL checkpoints, which copy the log into the database file and
    wait for the disk, run in a thread of their own instead of inside a commit (measured:
    a checkpoint in a commit held the event loop 30-100 ms every few seconds, past the
    request budget).

    Args:
        path: The database file.
        notify: Called after each commit with the committed rows (e.g. publish review and
            decline decisions); a failure there is counted, never lost silently.
        synchronous: SQLite's ``synchronous`` (NORMAL: survives process crashes; FULL:
            power loss too).
    """

    def __init__(
        self,
        path: Path,
        *,
        notify: Callable[[Sequence[dict[str, Any]]], None] | None = None,
        synchronous: str = "NORMAL",
    ) -> None:
        self.path = path
        self._start(notify)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._conn.execute("PRAGMA wal_autocheckpoint=0")  # see Checkpointer
        self._conn.execute(f"PRAGMA journal_size_limit={64 << 20}")
        self._conn.executescript(SCHEMA)
        self._checkpointer = Checkpointer(path)
        self._sql = (
            f"INSERT OR IGNORE INTO decisions ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(COLUMNS))})"
        )

    def _start(self, notify: Callable[[Sequence[dict[str, Any]]], None] | None) -> None:
        """The group-commit state every backend shares."""
        self.notify = notify
        self.notify_failures = 0
        self.commits = 0
        self._batch: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._scheduled = False
        self._closed = False

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def find(self, key: str) -> Stored | None:
        """The stored decision under an idempotency key (or transaction id)."""
        row = self._conn.execute(
            "SELECT payload_sha256, response FROM decisions WHERE idempotency_key = ?", (key,)
        ).fetchone()
        return Stored(row[0], row[1]) if row else None

    async def write(self, row: dict[str, Any]) -> None:
        """Hand ``row`` over and return once the batch carrying it is committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._batch.append((row, done))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        await done

    def write_sync(self, rows: Sequence[dict[str, Any]]) -> None:
        """Commit ``rows`` now (the streaming scorer's micro-batches)."""
        self._commit(rows)

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM decisions").fetchone()[0])

    def recent(
        self, limit: int, model_version: str | None = None, since_ms: int | None = None
    ) -> list[tuple[float, bytes]]:
        """The newest ``limit`` decisions' (score, features JSON), of one model version
        or all, decided at ``since_ms`` or later: what the drift monitor compares with the
        training reference."""
        where, args = _recent_filter(model_version, since_ms, "?")
        # its own connection: called from a side worker's thread while the loop writes
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            rows = conn.execute(
                f"SELECT score, features FROM decisions {where} ORDER BY decided_ms DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [(float(score), bytes(features)) for score, features in rows]

    def close(self) -> None:
        """Commit what is pending, then close (again: nothing)."""
        if self._closed:
            return
        if self._batch:
            self._flush()
        self._closed = True
        self._disconnect()

    def _disconnect(self) -> None:
        self._checkpointer.stop()
        self._conn.close()

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._batch = self._batch, []
        error: BaseException | None = None
        try:
            self._commit([row for row, _ in batch])
        except self.errors as exc:
            error = exc
        for _, done in batch:
            _settle(done, error)

    def _insert(self, rows: Sequence[dict[str, Any]]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN")
            conn.executemany(self._sql, [tuple(r[c] for c in COLUMNS) for r in rows])
            conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _commit(self, rows: Sequence[dict[str, Any]]) -> None:
        self._insert(rows)
        self.commits += 1
        if self.notify is not None:
            try:
                self.notify(rows)
            except Exception:
                self.notify_failures += 1


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


class PostgresDecisionLog(DecisionLog):
    """The prediction log in PostgreSQL (the scale-out part): the same table, group
    commit and guarantee (a returned decision is committed: with PostgreSQL's default
    ``synchronous_commit=on``, durable on the server's disk)."""

    errors = (Exception,)  # psycopg.Error and connection failures alike fail the batch

    def __init__(
        self, url: str, *, notify: Callable[[Sequence[dict[str, Any]]], None] | None = None
    ) -> None:
        import psycopg

        self.url = url
        self._start(notify)
        self._pg = psycopg.connect(url, autocommit=True)
        ddl = SCHEMA.replace("BLOB", "BYTEA").replace("REAL", "DOUBLE PRECISION")
        # CREATE ... IF NOT EXISTS is not safe against itself: two scorers starting at
        # once both create, and one fails on pg_type's unique index. A transaction-scoped
        # advisory lock lets one create while the others wait, then find the table there.
        with self._pg.transaction():
            self._pg.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            self._pg.execute(ddl.replace("INTEGER", "BIGINT"))
        values = ", ".join(["%s"] * len(COLUMNS))
        self._sql = (
            f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES ({values})"
            " ON CONFLICT (idempotency_key) DO NOTHING"
        )

    def find(self, key: str) -> Stored | None:
        row = self._pg.execute(
            "SELECT payload_sha256, response FROM decisions WHERE idempotency_key = %s", (key,)
        ).fetchone()
        return Stored(row[0], bytes(row[1])) if row else None

    def recent(
        self, limit: int, model_version: str | None = None, since_ms: int | None = None
    ) -> list[tuple[float, bytes]]:
        where, args = _recent_filter(model_version, since_ms, "%s")
        rows = self._pg.execute(
            f"SELECT score, features FROM decisions {where} ORDER BY decided_ms DESC LIMIT %s",
            (*args, limit),
        ).fetchall()
        return [(float(score), bytes(features)) for score, features in rows]

    def count(self) -> int:
        row = self._pg.execute("SELECT count(*) FROM decisions").fetchone()
        return int(row[0]) if row else 0

    def _disconnect(self) -> None:
        self._pg.close()

    def _insert(self, rows: Sequence[dict[str, Any]]) -> None:
        with self._pg.transaction(), self._pg.cursor() as cur:
            cur.executemany(self._sql, [tuple(r[c] for c in COLUMNS) for r in rows])


def _recent_filter(
    model_version: str | None, since_ms: int | None, mark: str
) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (and its arguments) of :meth:`DecisionLog.recent`."""
    terms: list[str] = []
    args: list[Any] = []
    if model_version is not None:
        terms.append(f"model_version = {mark}")
        args.append(model_version)
    if since_ms is not None:
        terms.append(f"decided_ms >= {mark}")
        args.append(since_ms)
    return ("WHERE " + " AND ".join(terms) if terms else ""), tuple(args)


def open_decision_log(
    target: Path | str, *, notify: Callable[[Sequence[dict[str, Any]]], None] | None = None
) -> DecisionLog:
    """A SQLite file path, or a ``postgresql://`` URL."""
    if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
        return PostgresDecisionLog(target, notify=notify)
    return DecisionLog(Path(target), notify=notify)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def now_ms() -> int:
    return int(time.time() * 1000)
