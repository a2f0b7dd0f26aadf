"""The prediction log's contract on SQLite and on a real PostgreSQL server: group
commit, idempotent inserts and lookups, declared columns, labels and how a repeated one
is kept, and the queries the feedback loop asks (joined, shadow pairs, recent)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from loopline.exceptions import ConfigError
from loopline.predictions import Column, Label, Log, Row, SqliteLog, open_prediction_log

COLUMNS = (Column("outcome", "TEXT", index=True), Column("value", "REAL"))


def row(
    i: int, key: str | None = None, *, version: str = "m:1", arm: str = "champion",
    shadow: dict[str, Any] | None = None, shadow_model: str | None = None, **more: Any,
) -> Row:  # fmt: skip
    outputs = {"score": i / 100, **more}
    return Row(
        key=key or f"k{i}", request_id=f"r{i}", fingerprint=f"h{i}", decided_ms=i,
        routing_key=f"u{i % 3}", model_version=version, arm=arm,
        inputs=json.dumps({"x": float(i % 2)}).encode(), outputs=json.dumps(outputs).encode(),
        response=b'{"n": %d}' % i, shadow_model=shadow_model,
        shadow_outputs=None if shadow is None else json.dumps(shadow).encode(),
        columns={"outcome": "yes" if i % 2 else "no", "value": float(i)},
    )  # fmt: skip


def fresh_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Log:
    if request.param == "sqlite":
        return open_prediction_log(tmp_path / "predictions.db", columns=COLUMNS)
    url = fresh_database(request.getfixturevalue("postgres_url"), "predictions")
    return open_prediction_log(url, columns=COLUMNS)


def test_group_commit_and_lookups(log: Log) -> None:
    notified: list[list[str]] = []
    log.notify = lambda rows: notified.append([r.columns["outcome"] for r in rows])  # type: ignore[attr-defined]

    async def many() -> None:
        await asyncio.gather(*(log.write(row(i)) for i in range(50)))

    asyncio.run(many())
    assert log.count() == 50
    assert [len(n) for n in notified] == [50], "one turn of the event loop, one commit"
    found = log.find("k7")
    assert found is not None
    assert (found.payload_sha256, found.response) == ("h7", b'{"n": 7}')
    assert log.find("nope") is None
    log.write_many([row(7), row(99)])  # a replayed row is stored once
    assert log.count() == 51
    assert log.find("k7").response == b'{"n": 7}'  # type: ignore[union-attr]
    newest = log.recent(2)
    assert [json.loads(r.outputs)["score"] for r in newest] == [0.99, 0.49]
    assert len(log.recent(100, since_ms=40)) == 11
    log.close()
    log.close()


def test_labels_are_kept_by_their_rule_and_the_position_moves_with_them(log: Log) -> None:
    log.write_many([row(i) for i in range(4)])
    assert log.label_offset("labels", 0) == 0
    changed = log.add_labels(
        [Label("r0", 0.0, 10), Label("r1", 1.0, 10)], keep="max", position=("labels", 0, 2)
    )
    assert changed == 2
    assert log.label_offset("labels", 0) == 2
    assert log.add_labels([Label("r0", 1.0, 20), Label("r1", 0.0, 20)], keep="max") == 1
    assert log.add_labels([Label("r0", 1.0, 30)], keep="max") == 0, "the same label again"
    assert log.add_labels([Label("r2", 2.0, 5), Label("r2", 3.0, 6)], keep="latest") == 2
    assert log.add_labels([Label("r3", 1.0, 5)], keep="first") == 1
    assert log.add_labels([Label("r3", 0.0, 6)], keep="first") == 0
    joined = log.joined()
    assert joined.request_ids == ["r0", "r1", "r2", "r3"]
    assert joined.labels == [{"": 1.0}, {"": 1.0}, {"": 3.0}, {"": 1.0}]
    log.close()


def test_joined_filters_by_time_version_and_label_time_and_segments(log: Log) -> None:
    log.write_many([row(i, version="m:1" if i < 6 else "m:2") for i in range(10)])
    log.add_labels([Label(f"r{i}", float(i % 2), 100 + i) for i in range(10)])
    log.add_labels([Label("r4", 2.0, 100, subject="item-a"), Label("r4", 0.0, 100, subject="b")])
    got = log.joined(decided_from_ms=2, decided_until_ms=8, labelled_before_ms=106)
    assert got.request_ids == [f"r{i}" for i in range(2, 8)]
    assert got.decided_ms == list(range(2, 8))
    assert got.model_versions == ["m:1"] * 4 + ["m:2"] * 2
    assert got.labels[2] == {"": 0.0, "item-a": 2.0, "b": 0.0}, "every subject of a request"
    assert got.labels[4:] == [{}, {}], "labels that came at 106 or later are not known yet"
    assert got.outputs[0] == {"score": 0.02}
    mine = log.joined(model_version="m:2")
    assert mine.request_ids == ["r6", "r7", "r8", "r9"]
    assert set(log.joined(segment="outcome").segments) == {"yes", "no"}
    assert log.joined(segment="input:x").segments[:2] == ["0.0", "1.0"]
    assert set(log.joined(segment="arm").segments) == {"champion"}
    with pytest.raises(ConfigError, match="segment='nope'"):
        log.joined(segment="nope")
    log.close()


def test_shadow_pairs_hold_both_models_outputs_and_the_challengers_failures(log: Log) -> None:
    rows = [row(i, shadow={"score": 1 - i / 100}, shadow_model="m:2") for i in range(6)]
    rows += [row(6, shadow=None, shadow_model="m:2"), row(7)]  # the shadow failed; unshadowed
    log.write_many(rows)
    log.add_labels([Label(f"r{i}", float(i % 2), 50) for i in range(8)])
    pairs = log.shadow_pairs("m:2", labelled_before_ms=51, decided_before_ms=5)
    assert [p["score"] for p in pairs.champion] == [0.0, 0.01, 0.02, 0.03, 0.04]
    assert [p["score"] for p in pairs.challenger] == [1.0, 0.99, 0.98, 0.97, 0.96]
    assert pairs.labels == [{"": float(i % 2)} for i in range(5)]
    assert (pairs.calls, pairs.errors) == (5, 0)
    everything = log.shadow_pairs("m:2", labelled_before_ms=51)
    assert (len(everything.champion), everything.calls, everything.errors) == (6, 7, 1)
    assert log.shadow_pairs("m:2", labelled_before_ms=50).champion == [], "labels not known"
    log.close()


def test_declared_columns_are_checked() -> None:
    with pytest.raises(ConfigError, match="lower_snake_case"):
        Column("Decision")
    with pytest.raises(ConfigError, match="generic columns"):
        Column("request_id")
    with pytest.raises(ConfigError, match="TEXT, REAL or INTEGER"):
        Column("x", "BLOB")  # type: ignore[arg-type]


@pytest.mark.postgres
def test_scorers_starting_at_once_on_a_fresh_postgres_all_open_the_log(postgres_url: str) -> None:
    """CREATE TABLE IF NOT EXISTS racing itself fails on pg_type's unique index; the
    schema is created under an advisory lock, so every scorer of a fresh cluster opens."""
    for round_ in range(5):
        opened = _open_at_once(fresh_database(postgres_url, f"race{round_}"), 4)
        for i, log in enumerate(opened):
            log.write_many([row(i)])
        assert opened[0].count() == 4
        for log in opened:
            log.close()


def _open_at_once(url: str, n: int) -> list[Log]:
    start = threading.Barrier(n)

    def open_log() -> Log:
        start.wait()
        return open_prediction_log(url, columns=COLUMNS)

    with ThreadPoolExecutor(n) as pool:
        return [f.result() for f in [pool.submit(open_log) for _ in range(n)]]


def test_sqlite_checkpoints_run_off_the_commit_path_and_bound_the_wal(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "predictions.db")
    assert log._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    wal = tmp_path / "predictions.db-wal"
    big = b"x" * 4000  # about a page a row
    sizes = []
    for round_ in range(3):
        before = log._checkpointer.checkpoints
        rows = [row(round_ * 1000 + i) for i in range(1000)]
        log.write_many([Row(**{**_fields(r), "inputs": big}) for r in rows])
        sizes.append(wal.stat().st_size)
        deadline = time.monotonic() + 10
        while log._checkpointer.checkpoints == before and time.monotonic() < deadline:
            time.sleep(0.05)
    assert sizes[0] > 4_000_000, "a commit does not checkpoint: the WAL holds the round"
    assert max(sizes) < 2 * sizes[0], "checkpointed rounds let the WAL start over"
    log.close()
    assert log._checkpointer.checkpoints >= 3
    assert SqliteLog(tmp_path / "predictions.db").count() == 3000


def _fields(r: Row) -> dict[str, Any]:
    return {f: getattr(r, f) for f in Row.__slots__}  # type: ignore[attr-defined]


def test_labels_of_every_kind_join_by_request_id(log: Log) -> None:
    """A binary outcome, graded relevance per item, a reviewer's verdict (one subject a
    class) and a preference between two outputs (the subject names the pair, the value
    which one won) are all ``(request, subject) -> value``."""
    log.write_many([row(i) for i in range(4)])
    log.add_labels(
        [
            Label("r0", 1.0, 5),  # the outcome: positive
            Label("r1", 3.0, 5, subject="item-7"),  # clicked and bought
            Label("r1", 1.0, 5, subject="item-2"),  # clicked
            Label("r2", 1.0, 5, subject="harassment"),  # the reviewer's verdict
            Label("r3", 1.0, 5, subject="preferred:a|b"),  # answer b preferred over a
        ]
    )
    assert log.joined().labels == [
        {"": 1.0},
        {"item-7": 3.0, "item-2": 1.0},
        {"harassment": 1.0},
        {"preferred:a|b": 1.0},
    ]
    log.close()
