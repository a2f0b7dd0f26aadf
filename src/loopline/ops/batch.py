"""Batch scoring into a database: scores written in chunks, resumable after a crash
without duplicates, to SQLite (``sqlite:///path``) or PostgreSQL (``postgresql://...``).

Two tables. The results table ``TABLE`` holds one row per scored input row, keyed by
``(run_key, row_key)`` (its primary key); the progress table ``TABLE_chunks`` holds
one row per committed chunk, keyed by ``(run_key, first_row)`` with its row count. A
chunk's rows and its progress row commit in ONE transaction, so after a crash (a
``kill -9``, a lost connection) the database holds whole chunks only, and the progress
table says exactly which. A restart skips the chunks recorded there; a chunk replayed
anyway (another chunk size, two runs at once) inserts with ``ON CONFLICT DO NOTHING``
and adds nothing twice.

The run key names what was scored with what (:func:`run_key`: model, version and a
fingerprint of the input files), so a rerun with another model or other inputs writes
rows of its own beside the old ones instead of mixing with them.

Table and column names are identifiers, never SQL: a name that is not
lower_snake_case is refused with :class:`ConfigError`. A PostgreSQL URL's password is
never shown (:func:`loopline.servers.credentials.masked`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from loopline.exceptions import ConfigError
from loopline.ops.batch_sql import POSTGRES_TYPES, TYPES, Database, Postgres, open_database, q
from loopline.ops.digest import digest_files
from loopline.servers.credentials import masked

if TYPE_CHECKING:
    from rich.progress import Progress, Task
    from rich.text import Text

T = TypeVar("T")
SqlType = Literal["TEXT", "REAL", "INTEGER"]
Scores = Mapping[str, Any]  # column -> its values (a sequence or a NumPy array), ROW_KEY too

RUN_KEY, ROW_KEY = "run_key", "row_key"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")


def check_name(name: str, what: str = "table") -> str:
    """``name`` if it is a lower_snake_case identifier (up to 48 characters), else a
    :class:`ConfigError`: names go into SQL as they are, so only plain ones pass."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"The {what} name {name!r} must be lower_snake_case: a letter or '_', then "
            "letters, digits or '_', up to 48 characters (e.g. 'scores')."
        )
    return name


def check_output(url: str) -> str:
    """``url`` if the sink can write to it (``sqlite:///PATH`` or ``postgresql://...``),
    else a ConfigError naming it (password masked): checked before any work is done."""
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError(f"--output {masked(url)!r} must be sqlite:///PATH or postgresql://...")
    return url


def fingerprint(paths: Sequence[Path]) -> str:
    """The files' digest (:func:`loopline.ops.digest.digest_files`: names and contents),
    first 16 hex digits: the same files give the same fingerprint wherever they are."""
    return digest_files(paths)[:16]


def run_key(model: str, version: int | str, inputs: Sequence[Path]) -> str:
    """``MODEL:VERSION:FINGERPRINT``: which model scored which input files."""
    return f"{model}:{version}:{fingerprint(inputs)}"


@dataclass(frozen=True, slots=True)
class Chunk(Generic[T]):
    """Rows ``first`` to ``first + rows`` of a run's input, and what scores them."""

    first: int
    rows: int
    data: T


def chunk_ranges(total: int, size: int) -> Iterator[tuple[int, int]]:
    """``(first, rows)`` of each chunk of ``size`` rows (the last one shorter)."""
    if size < 1:
        raise ConfigError(f"The chunk size must be at least 1 row. Got {size}.")
    for first in range(0, total, size):
        yield first, min(size, total - first)


class ScoreSink:
    """Scored rows into ``table`` of the database at ``url``, chunk by chunk.

    Args:
        url: ``sqlite:///path/to/file.db`` or ``postgresql://user:pw@host:port/db``.
        table: The results table (created if missing); progress goes to
            ``TABLE_chunks``.
        columns: Each result column's name and SQL type, beside ``run_key`` and
            ``row_key``.
        run: This run's key (:func:`run_key`).
        connect_timeout_s: Deadline for opening a PostgreSQL connection.
    """

    def __init__(
        self,
        url: str,
        *,
        table: str,
        columns: Mapping[str, SqlType],
        run: str,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.table = check_name(table)
        self.progress_table = f"{table}_chunks"  # at most 55 characters: under 63
        self.columns = dict(columns)
        for name, kind in self.columns.items():
            if check_name(name, "column") in (RUN_KEY, ROW_KEY):
                raise ConfigError(f"The column name {name!r} is the sink's own; use another.")
            if kind not in TYPES:
                raise ConfigError(f"Column {name!r}: type must be TEXT, REAL or INTEGER.")
        if not run:
            raise ConfigError("A sink needs a non-empty run key (see run_key()).")
        self.run = run
        db = open_database(url, connect_timeout_s)
        if db is None:
            raise ConfigError(
                f"The output {self.where!r} must be sqlite:///PATH or postgresql://..."
            )
        self._db: Database = db
        self._db.create(self._schema(), self.table, [RUN_KEY, ROW_KEY, *self.columns])
        self._names = [RUN_KEY, ROW_KEY, *self.columns]

    @property
    def where(self) -> str:
        """The URL with any password masked: what output and errors show."""
        return masked(self.url)

    def finished(self) -> dict[int, int]:
        """This run's committed chunks: first row -> rows."""
        got = self._db.query(
            f"SELECT first_row, rows FROM {q(self.progress_table)} WHERE run_key = ?", (self.run,)
        )
        return {int(first): int(rows) for first, rows in got}

    def count(self) -> int:
        """This run's rows in the results table."""
        got = self._db.query(f"SELECT count(*) FROM {q(self.table)} WHERE run_key = ?", (self.run,))
        return int(got[0][0])

    def write(self, first: int, scores: Scores) -> int:
        """Insert one chunk's rows (``ROW_KEY`` and every declared column) and record the
        chunk, in one transaction; return how many rows were new."""
        missing = [n for n in self._names[1:] if n not in scores]
        if missing:
            raise ConfigError(f"The scores of chunk {first} lack the columns {missing}.")
        n = len(scores[ROW_KEY])
        lists = [scores[name] for name in self._names[1:]]
        rows = list(zip([self.run] * n, *(_plain(v) for v in lists), strict=True))
        done = (self.run, first, n, int(time.time() * 1000))
        return self._db.write(self.table, self._names, rows, self.progress_table, done)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ScoreSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _schema(self) -> list[str]:
        types = POSTGRES_TYPES if isinstance(self._db, Postgres) else TYPES
        declared = "".join(f", {q(n)} {types[k]}" for n, k in self.columns.items())
        whole = types["INTEGER"]
        return [
            f"CREATE TABLE IF NOT EXISTS {q(self.table)} (run_key TEXT NOT NULL, "
            f"row_key TEXT NOT NULL{declared}, PRIMARY KEY (run_key, row_key))",
            f"CREATE TABLE IF NOT EXISTS {q(self.progress_table)} (run_key TEXT NOT NULL, "
            f"first_row {whole} NOT NULL, rows {whole} NOT NULL, "
            f"committed_ms {whole} NOT NULL, PRIMARY KEY (run_key, first_row))",
        ]


def _plain(values: Sequence[Any]) -> list[Any]:
    """Python values from a NumPy array (``tolist``) or any sequence; NaN as NULL."""
    out = values.tolist() if hasattr(values, "tolist") else list(values)
    return [None if isinstance(v, float) and math.isnan(v) else v for v in out]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a run did: ``rows`` in its input, ``written`` new in the database, the
    chunks it ``skipped`` as already committed (a resumed run) and their rows."""

    run: str
    rows: int
    written: int
    chunks: int
    skipped: int
    skipped_rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        """Rows scored and committed by this run per second (skipped chunks left out)."""
        return (self.rows - self.skipped_rows) / self.seconds if self.seconds > 0 else 0.0


def score_batches(
    chunks: Iterable[Chunk[T]],
    score: Callable[[T], Scores],
    sink: ScoreSink,
    *,
    total: int | None = None,
    progress: bool = True,
    after_chunk: Callable[[Chunk[T]], None] | None = None,
    label: str = "scoring",
) -> BatchResult:
    """Score each chunk not yet committed for ``sink``'s run and write it.

    Args:
        chunks: The run's chunks, in the same order on every run of it.
        score: A chunk's data -> its columns (``row_key`` and the sink's columns).
        sink: Where the rows go.
        total: The input's rows, for the progress bar (default: unknown).
        progress: Show a progress bar with rows/s on stderr.
        after_chunk: Called after each chunk commits (a hook for tests and callers
            that stop a run between chunks: an exception raised there ends the run
            with that chunk committed and the rest not).
        label: The progress bar's description.
    """
    finished = sink.finished()
    started = time.perf_counter()
    rows = written = count = skipped = skipped_rows = 0
    before = sum(finished.values())  # a resumed run's bar counts what is left
    with _bar(progress) as bar:
        left = None if total is None else max(0, total - before)
        task = bar.add_task(label + (" (resuming)" if before else ""), total=left)
        for chunk in chunks:
            rows += chunk.rows
            count += 1
            if finished.get(chunk.first) == chunk.rows:
                skipped, skipped_rows = skipped + 1, skipped_rows + chunk.rows
                continue
            written += sink.write(chunk.first, score(chunk.data))
            bar.update(task, advance=chunk.rows)
            if after_chunk is not None:
                after_chunk(chunk)
    took = time.perf_counter() - started
    return BatchResult(sink.run, rows, written, count, skipped, skipped_rows, took)


def _bar(show: bool) -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RowsPerSecond(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f} rows/s")

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RowsPerSecond(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show,
    )
