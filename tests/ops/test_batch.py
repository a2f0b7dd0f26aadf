"""The batch scoring sink on SQLite and a real PostgreSQL: chunks with their progress in
one transaction, a crashed run resumed without duplicates, names checked, passwords
never shown."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopline.exceptions import BackendUnavailableError, ConfigError
from loopline.ops.batch import (
    ROW_KEY,
    Chunk,
    Scores,
    ScoreSink,
    chunk_ranges,
    fingerprint,
    run_key,
    score_batches,
)

ROWS = 1000
COLUMNS: dict[str, Any] = {"score": "REAL", "band": "TEXT", "at_ms": "INTEGER"}


class CrashError(Exception):
    """Stands for the process dying between two chunks."""


def chunks(size: int) -> list[Chunk[np.ndarray]]:
    return [Chunk(a, n, np.arange(a, a + n)) for a, n in chunk_ranges(ROWS, size)]


def score(rows: np.ndarray) -> Scores:
    return {
        ROW_KEY: [f"r{i:05d}" for i in rows.tolist()],
        "score": rows / 7.0,
        "band": np.where(rows % 3 == 0, "high", "low"),
        "at_ms": rows * 1000,
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'scores.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    yield base
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:  # the server is the session's
        conn.execute('DROP TABLE IF EXISTS scores, scores_chunks, "order", order_chunks')


def sink(url: str, run: str = "m:1:abc") -> ScoreSink:
    return ScoreSink(url, table="scores", columns=COLUMNS, run=run)


def test_a_run_writes_every_row_once_with_its_values(url: str) -> None:
    with sink(url) as s:
        done = score_batches(chunks(300), score, s, total=ROWS, progress=False)
        assert (done.rows, done.written, done.chunks, done.skipped) == (ROWS, ROWS, 4, 0)
        assert s.count() == ROWS
        assert s.finished() == {0: 300, 300: 300, 600: 300, 900: 100}
        again = score_batches(chunks(300), score, s, total=ROWS, progress=False)
        assert (again.written, again.skipped, again.skipped_rows) == (0, 4, ROWS)
        got = s._db.query(
            "SELECT row_key, score, band, at_ms FROM scores WHERE row_key = ?", ("r00999",)
        )
    assert got == [("r00999", 999 / 7.0, "high", 999_000)]


def test_a_run_that_crashes_after_k_chunks_resumes_to_exactly_one_row_each(url: str) -> None:
    def crash_after_two(chunk: Chunk[np.ndarray]) -> None:
        if chunk.first == 200:
            raise CrashError

    with sink(url) as s, pytest.raises(CrashError):
        score_batches(chunks(100), score, s, progress=False, after_chunk=crash_after_two)
    scored: list[int] = []

    def counting(rows: np.ndarray) -> Scores:
        scored.append(int(rows[0]))
        return score(rows)

    with sink(url) as s:
        assert sorted(s.finished()) == [0, 100, 200]
        assert s.count() == 300
        done = score_batches(chunks(100), counting, s, progress=False)
        assert (done.skipped, done.written) == (3, ROWS - 300)
        assert scored[0] == 300, "finished chunks are not scored again"
        keys = [k for (k,) in s._db.query("SELECT row_key FROM scores WHERE run_key = ?", (s.run,))]
    assert sorted(keys) == [f"r{i:05d}" for i in range(ROWS)]


def test_a_replay_with_another_chunk_size_adds_no_duplicate(url: str) -> None:
    with sink(url) as s:
        score_batches(chunks(128)[:3], score, s, progress=False)
        done = score_batches(chunks(250), score, s, progress=False)  # overlaps the first 384
        assert (done.skipped, done.written) == (0, ROWS - 384)
        assert s.count() == ROWS


def test_runs_with_other_keys_keep_rows_of_their_own(url: str) -> None:
    for run in ("m:1:abc", "m:2:abc"):
        with sink(url, run) as s:
            score_batches(chunks(500), score, s, progress=False)
    with sink(url) as s:
        got = s._db.query("SELECT run_key, count(*) FROM scores GROUP BY run_key ORDER BY 1", ())
    assert [tuple(r) for r in got] == [("m:1:abc", ROWS), ("m:2:abc", ROWS)]


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("scores; DROP TABLE scores", COLUMNS),
        ('scores" --', COLUMNS),
        ("Scores", COLUMNS),
        ("s" * 49, COLUMNS),
        ("scores", {"score); DROP TABLE x; --": "REAL"}),
        ("scores", {"row_key": "TEXT"}),
        ("scores", {"score": "REAL; DROP TABLE x"}),
    ],
)
def test_hostile_or_bad_names_are_refused_before_any_sql(
    tmp_path: Path, table: str, columns: dict[str, Any]
) -> None:
    db = tmp_path / "x.db"
    with pytest.raises(ConfigError):
        ScoreSink(f"sqlite:///{db}", table=table, columns=columns, run="r")
    assert not db.exists()


def test_reserved_words_are_plain_names(url: str) -> None:
    with ScoreSink(url, table="order", columns={"select": "REAL"}, run="r") as s:
        s.write(0, {ROW_KEY: ["a", "b"], "select": [1.0, float("nan")]})
        assert s.count() == 2
        assert s.finished() == {0: 2}
        got = s._db.query('SELECT row_key, "select" FROM "order" ORDER BY row_key', ())
    assert [tuple(r) for r in got] == [("a", 1.0), ("b", None)]  # NaN stored as NULL


def test_other_urls_and_a_table_of_other_columns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sqlite:///PATH or postgresql") as caught:
        ScoreSink("mysql://u:hunter2@h/db", table="scores", columns=COLUMNS, run="r")
    assert "hunter2" not in str(caught.value)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    ScoreSink(url, table="scores", columns={"other": "TEXT"}, run="r").close()
    with pytest.raises(ConfigError, match="exists with other columns"):
        ScoreSink(url, table="scores", columns=COLUMNS, run="r")
    for where in (f"sqlite:///{tmp_path}", "sqlite:///"):  # a folder, no file at all
        with pytest.raises(ConfigError, match="Cannot open the SQLite database"):
            ScoreSink(where, table="scores", columns=COLUMNS, run="r")


def test_an_unreachable_postgres_is_named_without_its_password() -> None:
    url = "postgresql://loopline:s3cret-pw@127.0.0.1:1/scores"
    with pytest.raises(BackendUnavailableError) as caught:
        ScoreSink(url, table="scores", columns=COLUMNS, run="r", connect_timeout_s=2)
    assert "s3cret-pw" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


def test_the_run_key_names_model_version_and_input_contents(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "t.parquet").write_bytes(b"one")
    (b / "t.parquet").write_bytes(b"one")
    assert fingerprint([a / "t.parquet"]) == fingerprint([b / "t.parquet"])  # content, not place
    key = run_key("fraud", 3, [a / "t.parquet"])
    assert key.startswith("fraud:3:")
    assert len(key.split(":")[2]) == 16
    (b / "t.parquet").write_bytes(b"two")
    assert run_key("fraud", 3, [b / "t.parquet"]) != key


KILLED = """
import os, signal
import numpy as np
from loopline.ops.batch import ROW_KEY, Chunk, ScoreSink, chunk_ranges, score_batches

def score(rows):
    if rows[0] == 300:  # dies while scoring the fourth chunk: three are committed
        os.kill(os.getpid(), signal.SIGKILL)
    return {ROW_KEY: [f"r{i:05d}" for i in rows.tolist()], "score": rows / 7.0,
            "band": np.where(rows % 3 == 0, "high", "low"), "at_ms": rows * 1000}

chunks = [Chunk(a, n, np.arange(a, a + n)) for a, n in chunk_ranges(1000, 100)]
sink = ScoreSink(URL, table="scores", columns={"score": "REAL", "band": "TEXT",
                 "at_ms": "INTEGER"}, run="m:1:abc")
score_batches(chunks, score, sink, progress=False)
"""


def test_a_process_killed_mid_run_resumes_without_duplicates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scores.db'}"
    script = f"URL = {url!r}\n" + textwrap.dedent(KILLED)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    died = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60)
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()[-2000:]
    with sqlite3.connect(tmp_path / "scores.db") as conn:
        assert conn.execute("SELECT count(*) FROM scores").fetchone() == (300,)
    with sink(url) as s:
        assert sorted(s.finished()) == [0, 100, 200]
        done = score_batches(chunks(100), score, s, progress=False)
        assert (done.skipped, done.written) == (3, ROWS - 300)
        assert s.count() == ROWS
