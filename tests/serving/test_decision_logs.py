"""The prediction log's contract on SQLite and on a real PostgreSQL server: group commit,
idempotent inserts, lookups; and the service on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from loopline.apps.fraud.service import ServeOptions, build
from loopline.registry import Registry
from loopline.serving import KeyRing
from loopline.serving.decisions import COLUMNS, DecisionLog, open_decision_log

from .conftest import ADMIN, SCORE
from .test_service import client, score, tx


def _row(i: int, key: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        idempotency_key=key or f"k{i}", transaction_id=f"t{i}", payload_sha256=f"h{i}",
        decided_ms=i, decision="approve", score=0.1, model_version="fraud:1", arm="champion",
        rules_version="r", card_token="tok_1", features=b"{}", response=b'{"n": %d}' % i,
    )  # fmt: skip
    return row


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> DecisionLog:
    if request.param == "sqlite":
        return open_decision_log(tmp_path / "decisions.db")
    return open_decision_log(_fresh_database(request.getfixturevalue("postgres_url"), "log"))


def _fresh_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"


def test_group_commit_and_lookups(log: DecisionLog) -> None:
    notified: list[int] = []
    log.notify = lambda rows: notified.append(len(rows))

    async def many() -> None:
        await asyncio.gather(*(log.write(_row(i)) for i in range(50)))

    asyncio.run(many())
    assert log.count() == 50
    assert notified == [50], "one turn of the event loop, one commit"
    found = log.find("k7")
    assert found is not None
    assert found.payload_sha256 == "h7"
    assert found.response == b'{"n": 7}'
    assert log.find("nope") is None
    log.write_sync([_row(7), _row(99)])  # a replayed row is stored once
    assert log.count() == 51
    assert log.find("k7").response == b'{"n": 7}'  # type: ignore[union-attr]
    log.close()
    log.close()


@pytest.mark.postgres
def test_scorers_starting_at_once_on_a_fresh_postgres_all_open_the_log(postgres_url: str) -> None:
    """CREATE TABLE IF NOT EXISTS racing itself fails on pg_type's unique index; the
    schema is created under an advisory lock, so every scorer of a fresh cluster opens."""
    for round_ in range(5):
        opened = _open_at_once(_fresh_database(postgres_url, f"race{round_}"), 4)
        for i, log in enumerate(opened):
            log.write_sync([_row(i)])
        assert opened[0].count() == 4
        for log in opened:
            log.close()


def _open_at_once(url: str, n: int) -> list[DecisionLog]:
    start = threading.Barrier(n)

    def open_log() -> DecisionLog:
        start.wait()
        return open_decision_log(url)

    with ThreadPoolExecutor(n) as pool:
        return [f.result() for f in [pool.submit(open_log) for _ in range(n)]]


@pytest.mark.postgres
@pytest.mark.anyio
async def test_the_service_on_postgres(
    tmp_path: Path, fraud_registry: Registry, rules_file: Path, postgres_url: str
) -> None:
    KeyRing([SCORE, ADMIN]).save(tmp_path / "keys.json")
    svc = build(
        ServeOptions(
            state=tmp_path / "state",
            registry=fraud_registry.uri,
            rules=rules_file,
            keys=tmp_path / "keys.json",
            decisions=postgres_url,
        )
    )
    try:
        async with client(svc) as c:
            first = await score(c, tx(77))
            again = await score(c, tx(77))
        assert first.status_code == 200
        assert again.json()["replayed"] is True
        assert svc.log.find("t-77") is not None
    finally:
        svc.log.close()
        svc.scorer.engine.store.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_sqlite_checkpoints_run_off_the_commit_path_and_bound_the_wal(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "decisions.db")
    assert log._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    wal = tmp_path / "decisions.db-wal"
    big = b"x" * 4000  # about a page a row
    sizes = []
    for round_ in range(3):
        before = log._checkpointer.checkpoints
        rows = [_row(round_ * 1000 + i) | {"features": big} for i in range(1000)]
        log.write_sync(rows)
        sizes.append(wal.stat().st_size)
        deadline = time.monotonic() + 10
        while log._checkpointer.checkpoints == before and time.monotonic() < deadline:
            time.sleep(0.05)
    assert sizes[0] > 4_000_000, "a commit does not checkpoint: the WAL holds the round"
    assert max(sizes) < 2 * sizes[0], "checkpointed rounds let the WAL start over"
    log.close()
    assert log._checkpointer.checkpoints >= 3
    assert open_decision_log(tmp_path / "decisions.db").count() == 3000
