"""The whole loop with an application that is not fraud (tests/toyapp.py), on SQLite and
on a real PostgreSQL server: serve -> prediction log -> labels from a topic -> matured
NDCG -> the retraining loop shadows a stronger challenger, gates it on NDCG, canaries it
and promotes it; a weaker one is refused."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from loopline.events import EmbeddedLog
from loopline.feedback import (
    LabelFeed,
    Policy,
    RetrainingLoop,
    Stage,
    gate,
    matured_performance,
    shadow_evidence,
)
from loopline.registry import Registry
from loopline.units import DAY_MS, HOUR_MS
from tests.toyapp import (
    MODEL,
    SCORE_KEY,
    TASK,
    Toy,
    World,
    build,
    click_messages,
    decode_clicks,
    train_version,
)

pytestmark = pytest.mark.anyio
T0 = 1_750_000_000_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    from tests.predictions.test_logs import fresh_database

    return fresh_database(request.getfixturevalue("postgres_url"), "toyloop")


async def _serve(toy: Toy, first: int, n: int, at_ms: int) -> list[dict[str, Any]]:
    """``n`` requests at simulated time ``at_ms``; their bodies."""
    toy.now[0] = at_ms / 1000
    rng = np.random.default_rng(first)
    bodies = [toy.world.request(first + i, rng) for i in range(n)]
    transport = httpx.ASGITransport(app=toy.service)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for body in bodies:
            r = await c.post("/v1/rank", json=body, headers={"X-API-Key": SCORE_KEY})
            assert r.status_code == 200, r.text
    return bodies


async def test_serve_label_judge_and_promote_a_better_ranker(
    tmp_path: Path, world: World, log_url: str | None
) -> None:
    registry = Registry(root=tmp_path / "registry")
    train_version(world, registry, strong=False, alias="champion")
    toy = build(tmp_path, registry, world, log_url=log_url)
    events = EmbeddedLog(tmp_path / "events.db")
    events.create_topic("toy.clicks", partitions=1)
    feed = LabelFeed(events, toy.log, topic="toy.clicks", decode=decode_clicks, keep="max")
    trained: list[int] = []

    def retrain(now_ms: int, trigger: Any) -> int:
        trained.append(train_version(world, registry, strong=True, seed=len(trained) + 1))
        return trained[-1]

    loop = RetrainingLoop(
        policy=Policy(
            every_days=1, maturity_days=1, min_shadow_days=1, canary_days=1, canary_percent=50
        ),
        registry=registry,
        model=MODEL,
        rollout=toy.deployment,
        train=retrain,
        outcomes=toy.log,
        metric=TASK.metric,
        gate=partial(gate, min_support=30),
    )
    loop.tick(T0)
    assert loop.stage is Stage.IDLE
    loop.tick(T0 + DAY_MS)  # the champion is a day old: the schedule asks for a challenger
    assert loop.stage is Stage.SHADOW
    assert toy.deployment.routing.challenger is not None

    served = await _serve(toy, 0, 120, T0 + DAY_MS + HOUR_MS)  # shadowed by the challenger
    events.append_many("toy.clicks", click_messages(world, served, T0 + DAY_MS + 2 * HOUR_MS))
    assert feed.run_once() == 120 * 20, "every candidate judged"
    days = matured_performance(toy.log, TASK, now_ms=T0 + 3 * DAY_MS)
    assert [d.labelled for d in days] == [120]
    weak_ndcg = days[0].metrics["ndcg_at_5"]
    assert 0 < weak_ndcg < 1

    label = toy.deployment.routing.challenger.label  # type: ignore[union-attr]
    evidence = shadow_evidence(toy.log, TASK.metric, label, labelled_before_ms=T0 + 3 * DAY_MS)
    assert gate(evidence, min_support=30).passed
    swapped = type(evidence)(TASK.metric, evidence.challenger, evidence.champion)
    refused = gate(swapped, min_support=30)
    assert not refused.passed, "a weaker ranker is refused"
    assert "ahead in only" in refused.reasons[0]

    loop.tick(T0 + 3 * DAY_MS + 1)  # a day of shadowed answers has matured: the gate
    assert loop.stage is Stage.CANARY, [s.why for s in registry.history(MODEL)]
    await _serve(toy, 1000, 60, T0 + 3 * DAY_MS + HOUR_MS)  # half the users on the challenger
    loop.tick(T0 + 4 * DAY_MS + 2)  # a healthy day of canary: promoted
    assert loop.stage is Stage.IDLE
    assert toy.deployment.routing.champion.label == f"{MODEL}:{trained[0]}"
    assert registry.get(MODEL, "champion").version == trained[0]
    steps = [(s.action, s.passed) for s in registry.history(MODEL) if s.version == trained[0]]
    assert ("gate", True) in steps
    assert steps[-1] == ("promote to champion", True)
    gate_step = next(s for s in registry.history(MODEL) if s.action == "gate")
    assert gate_step.why.startswith("quality: ndcg_at_5")

    served = await _serve(toy, 2000, 80, T0 + 4 * DAY_MS + HOUR_MS)  # the new champion
    events.append_many("toy.clicks", click_messages(world, served, T0 + 4 * DAY_MS + HOUR_MS))
    feed.run_once()
    day = matured_performance(toy.log, TASK, now_ms=T0 + 6 * DAY_MS, segment="model_version")
    by_version = {d.segment: d.metrics["ndcg_at_5"] for d in day if d.day == (T0 // DAY_MS) + 4}
    assert by_version[f"{MODEL}:{trained[0]}"] > weak_ndcg, "the promoted ranker ranks better"
    events.close()
    toy.close()
