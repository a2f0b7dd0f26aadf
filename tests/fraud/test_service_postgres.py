"""The fraud service with its prediction log on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
import pytest

from loopline.apps.fraud.events import Label
from loopline.apps.fraud.labels import LABELS
from loopline.apps.fraud.service import LABELS_EVERY_S, FraudService, ServeOptions, build
from loopline.events import Codec, Message, open_log
from loopline.registry import Registry
from loopline.serving import KeyRing

from .conftest import ADMIN, SCORE
from .test_service import client, score, tx


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.postgres
@pytest.mark.anyio
async def test_the_service_on_postgres(
    tmp_path: Path, fraud_registry: Registry, rules_file: Path, postgres_url: str
) -> None:
    svc = _on_postgres(tmp_path, fraud_registry, rules_file, postgres_url)
    try:
        async with client(svc) as c:
            first = await score(c, tx(77))
            again = await score(c, tx(77))
        assert first.status_code == 200
        assert again.json()["replayed"] is True
        assert svc.log.find("t-77") is not None
    finally:
        svc.close()


@pytest.mark.postgres
@pytest.mark.anyio
async def test_a_label_import_held_by_a_lock_does_not_stop_requests(
    tmp_path: Path, fraud_registry: Registry, rules_file: Path, postgres_url: str
) -> None:
    """Two scorers import the same labels into one PostgreSQL log: one's transaction
    waits on the other's row lock. That wait ran on the event loop, and every request
    stopped behind it (the scale demo's replay timed out after 5 s). The service's own
    background tasks run here, with another connection holding the labels' table."""
    # labels go to the log only, as on the scale profile
    svc = _on_postgres(tmp_path, fraud_registry, rules_file, postgres_url, learn=False)
    label = Label(transaction_id="t-90", label_time_ms=1, event_time_ms=1,
                  card_token="tok_card6", terminal_id="term-0000001", is_fraud=1.0)  # fmt: skip
    events = open_log(f"file://{(tmp_path / 'state' / 'events.db').resolve()}")
    events.append_many(LABELS, [Message(Codec(Label).encode(label), key=b"tok_card6")])
    events.close()
    gaps: list[float] = []

    async def ticker() -> None:  # how long the event loop goes without a turn
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.02)
            gaps.append(time.perf_counter() - last)
            last = time.perf_counter()

    tasks = [asyncio.ensure_future(task()) for task in [*svc.service.tasks, ticker]]
    try:
        with psycopg.connect(postgres_url) as holder:
            holder.execute("LOCK TABLE label_positions IN ACCESS EXCLUSIVE MODE")
            await asyncio.sleep(LABELS_EVERY_S + 0.5)  # the label step waits from 1 s on
            async with client(svc) as c:
                answered = await score(c, tx(91))
            assert answered.status_code == 200, answered.text
            await asyncio.sleep(0.5)
        assert max(gaps) < 0.5, f"the event loop stopped {max(gaps):.2f} s for the labels"
        await asyncio.sleep(LABELS_EVERY_S + 0.5)  # the lock is gone: the next step runs
        assert svc.log.label_offset(LABELS, 0) == 1
    finally:
        for task in tasks:
            task.cancel()
        svc.close()


def _on_postgres(
    tmp_path: Path, registry: Registry, rules: Path, url: str, *, learn: bool = True
) -> FraudService:
    KeyRing([SCORE, ADMIN]).save(tmp_path / "keys.json")
    options = ServeOptions(
        state=tmp_path / "state", registry=registry.uri, rules=rules,
        keys=tmp_path / "keys.json", decisions=url, learn=learn,
    )  # fmt: skip
    return build(options)
