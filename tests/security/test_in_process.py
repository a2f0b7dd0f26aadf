"""Defects found by review, each reproduced in process where timing or files must be
controlled: a retry racing a slow commit, broken rule files, rollbacks undone by the
registry watch, a broker that stalls publishing, secrets written readable."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from loopline.apps.fraud.service import FraudService, ServeOptions, build, token_key
from loopline.exceptions import ConfigError
from loopline.predictions import Row
from loopline.privacy import Retention, RetentionJob
from loopline.registry import Registry, UntrustedModelError
from loopline.serving import KeyRing
from tests.fraud.conftest import ADMIN_KEY, SCORE
from tests.fraud.test_service import client, score, tx

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_retry_during_a_slow_commit_gets_the_first_answer_learned_once(
    service: FraudService,
) -> None:
    # the retry once decided the transaction again: a second answer, learned twice
    write = service.log.write
    learned: list[str] = []
    committed = service.pipeline.committed

    def counted(p: Any) -> None:
        learned.append(p.request_id)
        committed(p)

    service.pipeline.committed = counted  # type: ignore[method-assign]

    async def slow(row: Any) -> None:
        await asyncio.sleep(0.3)
        await write(row)

    service.log.write = slow  # type: ignore[method-assign]
    async with client(service) as c:
        first = await score(c, tx(900))
        assert first.status_code == 503
        again = await score(c, tx(900))  # at once: the first is still being written
        assert again.status_code == 200, again.text
        assert again.json()["replayed"] is True
        await asyncio.sleep(0.4)
    assert service.log.count() == 1
    assert learned == ["t-900"], "learned (and published) once"


@pytest.mark.parametrize(
    "text",
    [
        "rules:\n  - id: r\n    action: adjust\n    score: abc\n"
        "    when: {field: amount, op: '>', value: 1}\n",
        "lists: [a]\nrules: []\n",
        "rules:\n  - id: r\n    action: block\n    when: {field: amount, op: '>', value: [1]}\n",
        "rules: {id: r}\n",
    ],
)
async def test_a_broken_rule_file_keeps_the_last_good_rules(
    service: FraudService, rules_file: Path, text: str
) -> None:
    # each once failed every request of the batch with a 500
    async with client(service) as c:
        rules_file.write_text(text)
        os.utime(rules_file, (time.time() + 5, time.time() + 5))
        r = await c.post("/admin/rules/reload", headers={"X-API-Key": ADMIN_KEY})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "rules"
        service.pipeline.rules._checked = 0.0  # the next request looks at the file
        assert (await score(c, tx(910))).status_code == 200
        assert service.pipeline.rules.current().rules, "the last good rules stay"


async def test_a_deleted_rule_file_or_a_type_mismatch_is_never_a_5xx(
    service: FraudService, rules_file: Path
) -> None:
    async with client(service) as c:
        rules_file.write_text(
            "rules:\n  - id: odd\n    action: block\n"
            "    when: {field: merchant_category, op: '>', value: 5}\n"
        )
        assert (await c.post("/admin/rules/reload", headers={"X-API-Key": ADMIN_KEY})).is_success
        r = await score(c, tx(920))  # a string compared with a number: no match
        assert r.status_code == 200, r.text
        rules_file.unlink()
        service.pipeline.rules._checked = 0.0
        assert (await score(c, tx(921))).status_code == 200
    assert service.pipeline.rules.failures >= 1


async def test_a_rollback_is_not_undone_by_the_registry_watch(service: FraudService) -> None:
    deployment = service.deployment
    await deployment.reload(2)  # v2 champion, v1 previous
    deployment.rollback()
    assert deployment.routing.champion.version == 1
    watch = asyncio.ensure_future(deployment.follow(lambda: 2, every_s=0.05))
    await asyncio.sleep(0.4)  # the registry still names v2 champion
    assert deployment.routing.champion.version == 1, "the rollback sticks"
    watch.cancel()
    watch = asyncio.ensure_future(deployment.follow(lambda: 1, every_s=0.05))
    await asyncio.sleep(0.2)
    watch.cancel()
    assert deployment.routing.champion.version == 1


async def test_a_stalled_broker_does_not_hold_the_event_loop(service: FraudService) -> None:
    # publishing once ran on the event loop: a broker outage stopped every request
    events = service.events
    append = events.append_many
    published: list[str] = []

    def stalled(topic: str, messages: Any) -> Any:
        time.sleep(2.0)
        published.append(topic)
        return append(topic, messages)

    events.append_many = stalled  # type: ignore[method-assign]
    async with client(service) as c:
        started = time.monotonic()
        for i in range(20):  # a blocked card: every one declined, so published
            r = await score(c, tx(930 + i, card_token="tok_blocked"))
            assert r.json()["decision"] == "decline"
        assert time.monotonic() - started < 1.5, "answers did not wait for the broker"
    deadline = time.monotonic() + 10
    while "fraud.notifications" not in published:
        assert time.monotonic() < deadline, "the notifications were published meanwhile"
        await asyncio.sleep(0.1)


def test_secrets_are_private_from_creation_apart_from_the_state_and_long_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOOPLINE_TOKEN_KEY", raising=False)
    monkeypatch.setattr(os, "umask", os.umask)
    old = os.umask(0)  # a permissive umask: a file made then chmod-ed is world-readable first
    try:
        state, secrets = tmp_path / "state", tmp_path / "secrets"
        key = token_key(secrets, state)
        keys = tmp_path / "keys.json"
        KeyRing([]).save(keys)
    finally:
        os.umask(old)
    assert len(key) >= 32
    assert not (state / "token.key").exists(), "the key is not kept beside the tokens"
    for path in (secrets / "token.key", keys):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setenv("LOOPLINE_TOKEN_KEY", "00" * 8)
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        token_key(secrets, state)


async def test_an_untrusted_champion_is_refused_counted_once_and_serving_goes_on(
    service: FraudService,
) -> None:
    # the registry refuses it (tests/registry/test_signing.py); serving keeps its model
    tried: list[object] = []

    def untrusted(ref: object) -> Any:
        tried.append(ref)
        raise UntrustedModelError("unsigned", reason="unsigned", model="fraud", version=7)

    deployment = service.deployment
    deployment.load = untrusted
    watch = asyncio.ensure_future(deployment.follow(lambda: 7, every_s=0.02))
    await asyncio.sleep(0.3)
    watch.cancel()
    assert tried == [7], "tried once, not at every tick"
    assert deployment.routing.champion.version == 1
    async with client(service) as c:
        r = await c.post(
            "/admin/model/reload", json={"version": 7}, headers={"X-API-Key": ADMIN_KEY}
        )
        assert r.status_code == 422
        assert "unsigned" in r.json()["error"]
        metrics = (await c.get("/metrics")).text
        assert 'loopline_models_refused_total{reason="unsigned"} 2.0' in metrics
        assert (await score(c, tx(960))).status_code == 200


async def test_the_admin_erasure_leaves_nothing_of_the_customer(
    service: FraudService, tmp_path: Path
) -> None:
    mine = {"customer_id": "cust-erase", "card_token": "tok_erase", "device_id": "dev-erase"}
    async with client(service) as c:
        for i in range(5):
            assert (await score(c, tx(970 + i, **mine))).status_code == 200
            assert (await score(c, tx(980 + i))).status_code == 200  # someone else's
        refused = await c.post("/admin/erase", json={"subject": "cust-erase"})
        assert refused.status_code == 401
        r = await c.post(
            "/admin/erase", json={"subject": "cust-erase"}, headers={"X-API-Key": ADMIN_KEY}
        )
        assert r.status_code == 200, r.text
        assert "cust-erase" not in r.text, "the answer names the customer by a hash only"
        counts = r.json()["counts"]
    assert sum(counts.values()) >= 5, counts
    service.engine.store.snapshot()
    state = tmp_path / "state"
    for path in state.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for value in mine.values():
                assert value.encode() not in data, (path.name, value)
            for i in range(5):
                assert f"t-{970 + i}".encode() not in data, path.name
    assert service.log.count() == 5, "the other customer's decisions stay"


async def test_the_service_runs_retention_per_store(
    tmp_path: Path, fraud_registry: Registry, rules_file: Path
) -> None:
    options = ServeOptions(
        state=tmp_path / "state",
        registry=fraud_registry.uri,
        rules=rules_file,
        keys=tmp_path / "keys.json",
        retention=Retention(predictions_days=30, labels_days=30),
    )
    KeyRing([SCORE]).save(options.keys)  # type: ignore[arg-type]
    built = build(options)
    try:
        owners = [getattr(t, "__self__", None) for t in built.service.tasks]
        (job,) = [o for o in owners if isinstance(o, RetentionJob)]
        async with client(built) as c:
            for i in range(3):
                assert (await score(c, tx(990 + i))).status_code == 200
        old = [
            Row(
                f"old-{i}",
                f"old-{i}",
                "x",
                1_000 + i,
                "tok_old",
                "fraud:1",
                "champion",
                b"{}",
                b"{}",
                b"{}",
                columns={"decision": "approve"},
            )
            for i in range(4)
        ]
        built.log.write_many(old)
        assert built.log.count() == 7
        assert job.run_once()["prediction log"] == 4, "decided in 1970: past 30 days"
        assert built.log.count() == 3, "this month's decisions stay"
    finally:
        built.close()
