"""Fallbacks: a broken model falls back to LightGBM, then to the previous version; the
circuit breaker's states. (The Redis online store stopped under load is in
tests/reliability/test_redis_outage.py.)"""

from __future__ import annotations

import time

import msgspec
import numpy as np
import pytest

from loopline.apps.fraud.api import ScoreRequest
from loopline.apps.fraud.service import FraudService
from loopline.serving import CircuitBreaker
from loopline.serving.learning import CATCH_UP, EVERY_S

from .test_service import client, score, tx

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_broken_model_falls_back_to_lightgbm_then_previous(service: FraudService) -> None:
    async with client(service) as c:
        deployment = service.deployment
        champion = deployment.routing.champion
        champion.onnx = None  # type: ignore[attr-defined]  # ONNX fails: LightGBM, same version
        r = (await score(c, tx(1))).json()
        assert r["degraded"] == ["model_fallback"]
        assert r["model_version"] == "fraud:1"
        fresh = type(champion)(**vars(champion))
        fresh.version, fresh.booster = 9, None  # type: ignore[attr-defined]  # "v9" fails whole
        deployment.routing = deployment.routing.replace(champion=fresh, previous=champion)
        r = (await score(c, tx(2))).json()
        assert r["model_version"] == "fraud:1"
        assert "model_error:fraud:9" in r["degraded"]
        assert "previous_model" in r["degraded"]


def test_breaker_opens_on_failures_and_slow_calls_and_half_opens() -> None:
    now = [0.0]
    b = CircuitBreaker(
        "x", failures_to_open=2, reset_after_s=1.0, deadline_s=0.01, clock=lambda: now[0]
    )
    b.record(False)
    assert b.allow()
    b.record(True, seconds=0.5)  # slow: a failure too
    assert b.state == "open"
    assert not b.allow()
    now[0] = 1.5
    assert b.allow()
    assert b.state == "half_open"
    b.record(False)
    assert b.state == "open"
    now[0] = 3.0
    assert b.allow()
    b.record(True, seconds=0.001)
    assert b.state == "closed"
    assert b.trips == 2


def test_a_store_outage_backlog_is_caught_up_oldest_first_in_bounded_chunks(
    service: FraudService,
) -> None:
    pipeline = service.pipeline
    learner = pipeline.tabular.learner
    applied: list[list[str]] = []
    apply_many = service.engine.apply_many

    def recording(batch: dict[str, np.ndarray], **kw: object) -> None:
        applied.append(batch["transaction_id"].tolist())
        apply_many(batch, **kw)  # type: ignore[arg-type]

    service.engine.apply_many = recording  # type: ignore[method-assign]
    breaker = pipeline.tabular.store_breaker
    breaker.state, breaker.opened_at = "open", time.monotonic()  # the store is away
    routing = service.deployment.routing
    decided = [
        pipeline.decide(msgspec.json.decode(msgspec.json.encode(tx(i)), type=ScoreRequest), routing)
        for i in range(400)
    ]
    for d in decided:
        pipeline.committed(d)
    assert learner.pending == 400
    assert not applied
    breaker.state = "closed"  # the store is back: each due flush applies one chunk
    while learner.pending:
        time.sleep(EVERY_S)
        learner.flush(CATCH_UP)
    assert [len(a) for a in applied] == [CATCH_UP, CATCH_UP, CATCH_UP, 400 - 3 * CATCH_UP]
    assert [t for a in applied for t in a] == [d.response.transaction_id for d in decided]
    assert learner.lag_s() == 0.0
