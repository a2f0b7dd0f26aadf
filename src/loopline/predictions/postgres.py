"""The prediction log in PostgreSQL (the scale-out part), labels in the same database:
the same tables, group commit and guarantee as SQLite (a returned prediction is
committed: with PostgreSQL's default ``synchronous_commit=on``, durable on the
server's disk). Needs the ``postgres`` extra.

Every connection has deadlines: ``connect_timeout`` (a server that accepts the TCP
connection but never answers would otherwise hold the caller for as long as the kernel
keeps the socket) and ``statement_timeout`` (a statement waiting on a lock or a slow
disk fails with ``QueryCanceled`` instead of holding a scorer's event loop)."""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from loopline.exceptions import BackendUnavailableError, ConfigError
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

if TYPE_CHECKING:
    import psycopg

MAINTENANCE_TIMEOUT_S = 60.0  # erasure and retention delete many rows: a longer deadline
SCHEMA_LOCK = 0x6C6F6F70  # advisory lock key ("loop") held while creating the schema


def _pg(query: str) -> str:
    return query.replace("?", "%s")


class PostgresLog(GroupCommit):
    """Predictions and their labels in PostgreSQL.

    Args:
        url: ``postgresql://...``.
        columns: The application's own columns.
        notify: Called after each commit with its rows (see :class:`GroupCommit`).
        connect_timeout_s: Deadline for opening a connection (libpq rounds it up to
            whole seconds, at least 2).
        statement_timeout_s: Deadline for each statement on the server.
    """

    errors = (Exception,)  # psycopg.Error and connection failures alike fail the batch
    remote = True  # a network round trip a call: the kernel looks things up off its event loop

    def __init__(
        self,
        url: str,
        *,
        columns: Sequence[Column] = (),
        notify: Notify | None = None,
        connect_timeout_s: float = 5.0,
        statement_timeout_s: float = 2.0,
    ) -> None:
        for name, value in (
            ("connect_timeout_s", connect_timeout_s),
            ("statement_timeout_s", statement_timeout_s),
        ):
            if not value > 0:
                raise ConfigError(f"PostgresLog {name!r} must be > 0 seconds. Got {value!r}.")
        super().__init__(notify)
        self.url = url
        self.columns = check_columns(columns)
        self.connect_timeout_s = connect_timeout_s
        self.statement_timeout_s = statement_timeout_s
        self._pg = self.connect()
        # queries from side workers' threads get a connection of their own
        self._reads = self.connect()
        self._reads_lock = threading.Lock()
        # CREATE ... IF NOT EXISTS is not safe against itself: two scorers starting at
        # once both create, and one fails on pg_type's unique index. A transaction-scoped
        # advisory lock lets one create while the others wait, then find the tables.
        with self._pg.transaction():
            self._pg.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            self._pg.execute(sql.schema(self.columns, postgres=True))
        self._insert_sql = sql.insert(self.columns, postgres=True)

    def connect(
        self, *, statement_timeout_s: float | None = None
    ) -> psycopg.Connection[tuple[Any, ...]]:
        """A new autocommit connection with this log's deadlines
        (``statement_timeout_s``: another one, e.g. for maintenance that deletes much)."""
        import psycopg

        timeout_ms = round(1000 * (statement_timeout_s or self.statement_timeout_s))
        try:
            return psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(2, math.ceil(self.connect_timeout_s)),
                options=f"-c statement_timeout={timeout_ms}",
            )
        except psycopg.OperationalError as exc:
            raise BackendUnavailableError(
                f"Cannot connect to the PostgreSQL prediction log within "
                f"{self.connect_timeout_s:g}s: {str(exc).strip()}. Check that the server "
                "runs and that the URL (host, port, user, password, database) is right."
            ) from None

    def find(self, key: str) -> Stored | None:
        row = self._pg.execute(_pg(sql.FIND), (key,)).fetchone()
        return Stored(row[0], bytes(row[1])) if row else None

    def count(self) -> int:
        row = self._read(sql.COUNT, ())
        return int(row[0][0]) if row else 0

    def keys_of(self, column: str, value: str) -> list[tuple[str, str]]:
        """(request id, routing key) of the rows whose declared ``column`` is ``value``."""
        return [
            (str(a), str(b)) for a, b in self._read(sql.keys_of(column, self.columns), (value,))
        ]

    def recent(
        self, limit: int, *, model_version: str | None = None, since_ms: int | None = None
    ) -> list[Recent]:
        query, args = sql.recent(model_version, since_ms)
        return [Recent(bytes(i), bytes(o)) for i, o in self._read(query, (*args, limit))]

    def add_labels(
        self, labels: Iterable[Label], *, keep: Keep = "latest",
        position: tuple[str, int, int] | None = None,
    ) -> int:  # fmt: skip
        rows = [(x.request_id, x.subject, float(x.value), x.label_time_ms) for x in labels]
        changed = 0
        with self._reads_lock, self._reads.transaction(), self._reads.cursor() as cur:
            if position is not None:
                cur.execute(_pg(sql.UPSERT_POSITION), position)
            for row in rows:  # one by one: rowcount says whether each changed a label
                cur.execute(_pg(sql.upsert_label(keep)), row)
                changed += max(cur.rowcount, 0)
        return changed

    def label_offset(self, topic: str, partition: int) -> int:
        rows = self._read(sql.POSITION, (topic, partition))
        return int(rows[0][0]) if rows else 0

    def joined(
        self, *, decided_from_ms: int = 0, decided_until_ms: int = 2**62,
        labelled_before_ms: int = 2**62, model_version: str | None = None,
        segment: str | None = None,
    ) -> Joined:  # fmt: skip
        by, input_name = segment_of(segment, self.columns)
        args: list[Any] = [labelled_before_ms, decided_from_ms, decided_until_ms]
        if model_version is not None:
            args.append(model_version)
        return sql.group_joined(
            self._read(sql.joined(by, model_version, inputs=input_name is not None), args),
            input_name,
        )

    def shadow_pairs(
        self, challenger: str, *, labelled_before_ms: int, decided_before_ms: int = 2**62
    ) -> ShadowPairs:
        rows = self._read(sql.SHADOW_PAIRS, (labelled_before_ms, challenger, decided_before_ms))
        ((calls, errors),) = self._read(sql.SHADOW_CALLS, (challenger, decided_before_ms))
        return sql.group_pairs(rows, calls, errors)

    def erase(self, values: Collection[str]) -> int:
        """Delete the predictions whose routing key or request id is one of ``values``
        and their labels (erasure), then ``VACUUM`` both tables so the dead rows' space
        is marked free at once; return how many rows. PostgreSQL does not zero freed
        space: bytes can stay in data files and WAL until overwritten (see
        docs/privacy.md)."""
        if not values:
            return 0
        array = sorted(values)
        labels, predictions = sql.erase(postgres=True)
        with self.connect(statement_timeout_s=MAINTENANCE_TIMEOUT_S) as conn:
            with conn.transaction(), conn.cursor() as cur:
                removed = cur.execute(_pg(labels), (array,) * 3).rowcount
                removed += cur.execute(_pg(predictions), (array,) * 2).rowcount
            conn.execute("VACUUM predictions, labels")
        return removed

    def expire(self, older_than_ms: int, *, limit: int = 10_000) -> int:
        """Delete up to ``limit`` predictions decided before ``older_than_ms``, oldest
        first (retention); return how many."""
        return self._expire(sql.EXPIRE_PREDICTIONS, older_than_ms, limit)

    def expire_labels(self, older_than_ms: int, *, limit: int = 10_000) -> int:
        """Delete up to ``limit`` labels that arrived before ``older_than_ms``."""
        return self._expire(sql.EXPIRE_LABELS, older_than_ms, limit)

    def _expire(self, query: str, older_than_ms: int, limit: int) -> int:
        with self.connect(statement_timeout_s=MAINTENANCE_TIMEOUT_S) as conn:
            return conn.execute(_pg(query), (older_than_ms, limit)).rowcount

    def _read(self, query: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._reads_lock:
            return self._reads.execute(_pg(query), args).fetchall()

    def _insert(self, rows: Sequence[Row]) -> None:
        with self._pg.transaction(), self._pg.cursor() as cur:
            cur.executemany(self._insert_sql, sql.values(rows, self.columns))

    def _disconnect(self) -> None:
        self._pg.close()
        self._reads.close()
