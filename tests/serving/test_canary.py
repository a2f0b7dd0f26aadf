"""A canary that degrades is rolled back on its own, and the step is recorded."""

from __future__ import annotations

import numpy as np
import pytest

from loopline.registry import Registry
from loopline.serving import Service
from loopline.serving.canary import CanaryGuard

from .conftest import ADMIN_KEY
from .test_service import client, score, tx

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _guard(champion: tuple[int, int, int], challenger: tuple[int, int, int]) -> CanaryGuard:
    """Arms given as (decisions, flagged, errors), model time 1 ms each."""
    guard = CanaryGuard(min_decisions=100)
    for arm, (n, flagged, errors) in (("champion", champion), ("challenger", challenger)):
        for i in range(n):
            guard.record(arm, flagged=i < flagged, error=i < errors, model_ms=1.0)
    return guard


def test_the_guard_judges_errors_flag_rates_and_waits_for_enough_decisions() -> None:
    assert _guard((500, 25, 0), (500, 30, 0)).verdict() is None, "a similar canary is fine"
    assert _guard((500, 25, 0), (50, 50, 0)).verdict() is None, "too early to judge"
    failing = _guard((500, 25, 0), (500, 25, 20)).verdict()
    assert failing is not None
    assert failing.startswith("challenger model errors in 4.0% of 500 decisions")
    declines_all = _guard((500, 25, 0), (500, 400, 0)).verdict()
    assert declines_all is not None
    assert "challenger flags 80.0% of its decisions against 5.0%" in declines_all
    flags_nothing = _guard((500, 100, 0), (500, 0, 0)).verdict()
    assert flags_nothing is not None, "far fewer flags is as wrong as far more"
    catches_more = _guard((500, 25, 0), (500, 200, 0))  # 8x the champion's flags
    assert catches_more.verdict() is not None
    catches_more.expected_flag_ratio = 6.0  # what its shadow run showed on the same traffic
    assert catches_more.verdict() is None, "flagging as it did in shadow is no degradation"
    catches_more.expected_flag_ratio = 1.5
    assert "expected 1.50x from its shadow run" in (catches_more.verdict() or "")
    slow = CanaryGuard(min_decisions=10)
    for _ in range(20):
        slow.record("champion", flagged=False, error=False, model_ms=1.0)
        slow.record("challenger", flagged=False, error=False, model_ms=5.0)
    assert (slow.verdict() or "").startswith("challenger model p99 5.00 ms against 1.00 ms")
    jittery = CanaryGuard(min_decisions=10)  # 3x, but 40 us: a machine's noise, not the model
    for _ in range(20):
        jittery.record("champion", flagged=False, error=False, model_ms=0.02)
        jittery.record("challenger", flagged=False, error=False, model_ms=0.06)
    assert jittery.verdict() is None


async def test_a_canary_that_declines_everything_is_rolled_back_and_recorded(
    service: Service, fraud_registry: Registry
) -> None:
    service.canary.min_decisions = 40
    async with client(service) as c:
        r = await c.post(
            "/admin/routing",
            json={"challenger": 2, "canary_percent": 50},
            headers={"X-API-Key": ADMIN_KEY},
        )
        assert r.status_code == 200, r.text
        bad = service.scorer.routing.challenger
        assert bad is not None
        bad.score = lambda x: (np.full(len(x), 0.999), False)  # type: ignore[method-assign]
        arms = []
        for i in range(400):
            body = (await score(c, tx(5000 + i, card_token=f"tok_canary{i}"))).json()
            arms.append(body["model_version"])
            if service.scorer.routing.challenger is None:
                break
        assert service.scorer.routing.challenger is None, "rolled back"
        assert service.scorer.routing.canary_percent == 0
        assert "fraud:2" in arms, "the canary took traffic before"
        after = (await score(c, tx(9999, card_token="tok_canary_after"))).json()
        assert after["model_version"] == "fraud:1"
        metrics = (await c.get("/metrics")).text
    assert "loopline_canary_rollbacks_total 1.0" in metrics
    step = fraud_registry.history("fraud")[-1]
    assert (step.version, step.action, step.trigger, step.passed) == (
        2, "roll canary back", "canary guard", False,
    )  # fmt: skip
    assert "challenger flags" in step.why
