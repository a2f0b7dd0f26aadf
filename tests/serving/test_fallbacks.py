"""Fallbacks: a broken model falls back to LightGBM, then to the previous version; the
circuit breaker's states. (The Redis online store stopped under load is in
tests/reliability/test_redis_outage.py.)"""

from __future__ import annotations

import pytest

from loopline.serving import Service
from loopline.serving.resilience import CircuitBreaker

from .test_service import client, score, tx

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_broken_model_falls_back_to_lightgbm_then_previous(service: Service) -> None:
    async with client(service) as c:
        champion = service.scorer.routing.champion
        champion.onnx = None  # ONNX Runtime fails: LightGBM native, same version
        r = (await score(c, tx(1))).json()
        assert r["degraded"] == ["model_fallback"]
        assert r["model_version"] == "fraud:1"
        service.scorer.routing.previous = champion
        fresh = service.scorer.routing.champion = type(champion)(**vars(champion))
        fresh.version, fresh.booster = 9, None  # both engines of "v9" fail: previous answers
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
