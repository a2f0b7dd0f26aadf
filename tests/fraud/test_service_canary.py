"""A canary that degrades is rolled back on its own, and the step is recorded."""

from __future__ import annotations

import numpy as np
import pytest

from loopline.apps.fraud.service import FraudService
from loopline.registry import Registry

from .conftest import ADMIN_KEY
from .test_service import client, score, tx

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_canary_that_declines_everything_is_rolled_back_and_recorded(
    service: FraudService, fraud_registry: Registry
) -> None:
    service.deployment.guard.min_decisions = 40
    async with client(service) as c:
        r = await c.post(
            "/admin/routing",
            json={"challenger": 2, "canary_percent": 50},
            headers={"X-API-Key": ADMIN_KEY},
        )
        assert r.status_code == 200, r.text
        bad = service.deployment.routing.challenger
        assert bad is not None
        bad.predict = lambda x: (np.full(len(x), 0.999), False)  # type: ignore[method-assign]
        arms = []
        for i in range(400):
            body = (await score(c, tx(5000 + i, card_token=f"tok_canary{i}"))).json()
            arms.append(body["model_version"])
            if service.deployment.routing.challenger is None:
                break
        assert service.deployment.routing.challenger is None, "rolled back"
        assert service.deployment.routing.canary_percent == 0
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
