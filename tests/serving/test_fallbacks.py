"""Fallbacks against real failures: the Redis online store stopped mid-test, a broken
model file; answers stay 200, say they are degraded, and recover."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loopline.apps.fraud.service import ServeOptions, build
from loopline.registry import Registry
from loopline.servers import redis_server
from loopline.serving import KeyRing, Service
from loopline.serving.resilience import CircuitBreaker

from .conftest import ADMIN, SCORE
from .test_service import client, score, tx

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _service(tmp_path: Path, registry: Registry, rules: Path, features: str) -> Service:
    KeyRing([SCORE, ADMIN]).save(tmp_path / "keys.json")
    options = ServeOptions(
        state=tmp_path / "state",
        registry=registry.uri,
        rules=rules,
        keys=tmp_path / "keys.json",
        features=features,
    )
    return build(options)


@pytest.mark.redis
async def test_redis_down_means_rules_only_then_recovery(
    tmp_path: Path, fraud_registry: Registry, rules_file: Path
) -> None:
    with redis_server(tmp_path / "redis") as redis:
        svc = _service(tmp_path, fraud_registry, rules_file, redis.url)
        svc.scorer.store_breaker.reset_after_s = 0.5
        async with client(svc) as c:
            healthy = (await score(c, tx(1))).json()
            assert healthy["degraded"] == []
            assert healthy["model_version"] == "fraud:1"

            redis.stop(kill=True)  # the store dies
            down = [await score(c, tx(10 + i)) for i in range(6)]
            assert all(r.status_code == 200 for r in down)
            body = down[-1].json()
            assert body["degraded"] == ["features_unavailable", "rules_only"]
            assert body["model_version"] == "rules-only"
            assert svc.scorer.store_breaker.state == "open"
            blocked = (await score(c, tx(20, card_token="tok_blocked"))).json()
            assert blocked["decision"] == "decline", "rules still block while the store is down"
            metrics = (await c.get("/metrics")).text
            assert 'loopline_circuit_open{dependency="features"} 1.0' in metrics
            assert 'loopline_degraded_total{cause="rules_only"}' in metrics

            redis.start()  # back, same port: the breaker half-opens after its cool-down
            for attempt in range(10):  # a probe slower than the deadline (reconnecting on a
                time.sleep(0.6)  # busy machine) is answered but re-opens it for a cool-down
                back = (await score(c, tx(30 + attempt))).json()
                if not back["degraded"] and svc.scorer.store_breaker.state == "closed":
                    break
            assert back["degraded"] == []
            assert back["model_version"] == "fraud:1"
            assert svc.scorer.store_breaker.state == "closed"
        svc.log.close()
        svc.scorer.engine.store.close()


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
