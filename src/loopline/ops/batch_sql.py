"""The databases :class:`loopline.ops.batch.ScoreSink` writes to: SQLite (WAL: a
committed chunk survives ``kill -9``) and PostgreSQL (rows copied into a temporary
stage, then inserted from it: one round trip a chunk). Every name in their SQL has been
checked by :func:`loopline.ops.batch.check_name` before it gets here, and is quoted."""

from __future__ import annotations

import contextlib
import math
import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loopline.exceptions import BackendUnavailableError, ConfigError
from loopline.servers.credentials import masked

if TYPE_CHECKING:
    import psycopg

RUN_KEY = "run_key"
TYPES = {"TEXT": "TEXT", "REAL": "REAL", "INTEGER": "INTEGER"}
POSTGRES_TYPES = {"TEXT": "TEXT", "REAL": "DOUBLE PRECISION", "INTEGER": "BIGINT"}
PROGRESS = (RUN_KEY, "first_row", "rows", "committed_ms")


def open_database(url: str, connect_timeout_s: float) -> Database | None:
    """The database at ``url`` (``sqlite:///PATH`` or ``postgresql://...``); None for
    another scheme."""
    if url.startswith("sqlite:///"):
        return Sqlite(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        return Postgres(url, connect_timeout_s)
    return None


class Database(Protocol):
    """A results database as the sink uses it."""

    def create(self, statements: list[str], table: str, names: list[str]) -> None: ...
    def query(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]: ...
    def write(
        self, table: str, names: list[str], rows: list[tuple[Any, ...]], progress: str,
        done: tuple[Any, ...],
    ) -> int: ...  # fmt: skip
    def close(self) -> None: ...


def q(name: str) -> str:
    """A checked name as a quoted identifier (a reserved word such as ``order`` works)."""
    return f'"{name}"'


def insert(table: str, names: Sequence[str], mark: str, key: str) -> str:
    return (
        f"INSERT INTO {q(table)} ({', '.join(map(q, names))}) "
        f"VALUES ({', '.join([mark] * len(names))}) "
        f"ON CONFLICT ({key}) DO NOTHING"
    )


def mismatch(table: str, names: list[str], why: object) -> ConfigError:
    return ConfigError(
        f"The table {table!r} exists with other columns than {names} ({why}). "
        "Give another table name (--table), or drop the old table."
    )


class Sqlite:
    """A SQLite file in WAL mode."""

    def __init__(self, path: Path) -> None:
        try:
            if path.is_dir() or not path.name:
                raise IsADirectoryError(f"{path} is a folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            self.conn.execute("PRAGMA journal_mode=WAL")  # a committed chunk survives kill -9
            self.conn.execute("PRAGMA synchronous=NORMAL")
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"Cannot open the SQLite database sqlite:///{path} ({exc}): give a file in "
                "a folder this process can write, sqlite:///path/to/scores.db."
            ) from None

    def create(self, statements: list[str], table: str, names: list[str]) -> None:
        for statement in statements:
            self.conn.execute(statement)
        # PRAGMA, not a SELECT: SQLite reads a quoted unknown column as a string literal
        have = {row[1] for row in self.conn.execute(f"PRAGMA table_info({q(table)})")}
        if lacking := [n for n in names if n not in have]:
            raise mismatch(table, names, f"it has no {lacking}")

    def query(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, args).fetchall()

    def write(
        self, table: str, names: list[str], rows: list[tuple[Any, ...]], progress: str,
        done: tuple[Any, ...],
    ) -> int:  # fmt: skip
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            before = conn.total_changes
            conn.executemany(insert(table, names, "?", "run_key, row_key"), rows)
            new = conn.total_changes - before
            conn.execute(
                insert(progress, PROGRESS, "?",
                        "run_key, first_row"), done,
            )  # fmt: skip
            conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return new

    def close(self) -> None:
        self.conn.close()


class Postgres:
    """Rows are copied (``COPY``) into a temporary stage, then inserted from it with
    ``ON CONFLICT DO NOTHING``: one round trip a chunk, not one a row."""

    def __init__(self, url: str, connect_timeout_s: float) -> None:
        import psycopg

        try:
            self.conn: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(
                url, autocommit=True, connect_timeout=max(2, math.ceil(connect_timeout_s))
            )
        except psycopg.OperationalError as exc:
            why = str(exc).strip().replace(url, masked(url))
            raise BackendUnavailableError(
                f"Cannot connect to the PostgreSQL database {masked(url)} within "
                f"{connect_timeout_s:g}s: {why}. Check that the server runs and that the "
                "URL (host, port, user, password, database) is right."
            ) from None

    def create(self, statements: list[str], table: str, names: list[str]) -> None:
        import psycopg

        # CREATE ... IF NOT EXISTS is not safe against itself: two runs starting at once
        # both create and one fails; a transaction-scoped advisory lock orders them
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(table.encode()),))
            for statement in statements:
                self.conn.execute(statement)
        try:
            self.conn.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {q('stage_' + table)} AS "
                f"SELECT {', '.join(map(q, names))} FROM {q(table)} LIMIT 0"
            )
        except psycopg.errors.UndefinedColumn as exc:
            raise mismatch(table, names, exc) from None

    def query(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql.replace("?", "%s"), args).fetchall()

    def write(
        self, table: str, names: list[str], rows: list[tuple[Any, ...]], progress: str,
        done: tuple[Any, ...],
    ) -> int:  # fmt: skip
        listed, stage = ", ".join(map(q, names)), q("stage_" + table)
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(f"TRUNCATE {stage}")
            with cur.copy(f"COPY {stage} ({listed}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO {q(table)} ({listed}) SELECT {listed} FROM {stage} "
                "ON CONFLICT (run_key, row_key) DO NOTHING"
            )
            new = max(cur.rowcount, 0)
            cur.execute(
                insert(progress, PROGRESS, "%s",
                        "run_key, first_row"), done,
            )  # fmt: skip
        return new

    def close(self) -> None:
        self.conn.close()
