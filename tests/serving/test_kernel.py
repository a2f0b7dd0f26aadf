"""The serving kernel with an application that is not fraud (tests/toyapp.py): its
endpoints, validation naming the field, per-route body limits, keys and scopes,
idempotency, immutable routing (canary, shadow, blue-green), ordered fallbacks,
back-pressure, Server-Sent Events with cancellation, bounded metrics, OpenAPI."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopline.registry import Registry
from loopline.serving import Limits, Routing
from tests.toyapp import ADMIN_KEY, SCORE_KEY, Toy, World, build

from .conftest import client

pytestmark = pytest.mark.anyio
RNG = np.random.default_rng(7)


def ask(world: World, i: int, **over: Any) -> dict[str, Any]:
    return {**world.request(i, np.random.default_rng(i)), **over}


async def rank(c: Any, body: dict[str, Any], key: str = SCORE_KEY, **headers: str) -> Any:
    return await c.post("/v1/rank", json=body, headers={"X-API-Key": key, **headers})


async def test_a_request_is_answered_and_logged_with_its_columns(toy: Toy, world: World) -> None:
    async with client(toy) as c:
        r = await rank(c, ask(world, 1, k=3))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == "toy:1"
    assert len(body["items"]) == 3
    assert len(r.headers["x-trace-id"]) == 32
    with sqlite3.connect(toy.log.path) as db:  # type: ignore[attr-defined]
        row = db.execute(
            "SELECT request_id, routing_key, model_version, arm, k, outputs, response "
            "FROM predictions"
        ).fetchone()
    assert row[:5] == ("r-1", ask(world, 1)["user"], "toy:1", "champion", 3)
    assert json.loads(row[5]) == {"items": body["items"]}
    assert json.loads(row[6]) == body


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"k": 0}, 422, "k"),
        ({"k": "five"}, 422, "k"),
        ({"candidates": []}, 422, "candidates"),
        ({"user": "a b"}, 422, "user"),
        ({"colour": "red"}, 422, "colour"),
        ({"candidates": ["item-1", "item-1"]}, 422, "candidates"),  # the application's check
    ],
)
async def test_bad_requests_get_a_4xx_naming_the_field(
    toy: Toy, world: World, change: dict[str, Any], status: int, field: str
) -> None:
    async with client(toy) as c:
        r = await rank(c, ask(world, 2, **change))
    assert r.status_code == status, r.text
    problem = r.json()
    assert field in (problem.get("field") or "") + problem["error"]
    assert toy.log.count() == 0


async def test_body_limits_are_per_route(toy: Toy) -> None:
    big = {"request_id": "u-1", "blob": "x" * 200_000}
    async with client(toy) as c:
        r = await c.post("/v1/upload", json=big, headers={"X-API-Key": SCORE_KEY})
        assert r.status_code == 200, r.text
        assert r.json()["size"] == 200_000
        r = await c.post("/v1/rank", content=b'{"x": "' + b"a" * 20_000 + b'"}',
                         headers={"X-API-Key": SCORE_KEY})  # fmt: skip
        assert r.status_code == 413
        assert "16384" in r.json()["error"]
        r = await c.post("/v1/rank", content=b"{not json", headers={"X-API-Key": SCORE_KEY})
        assert r.status_code == 400


async def test_keys_and_scopes(toy: Toy, world: World) -> None:
    async with client(toy) as c:
        assert (await c.post("/v1/rank", json=ask(world, 3))).status_code == 401
        assert (await rank(c, ask(world, 3), key="ll_wrong")).status_code == 401
        routing = {"X-API-Key": SCORE_KEY}
        assert (await c.post("/admin/routing", json={}, headers=routing)).status_code == 403
        admin = {"X-API-Key": ADMIN_KEY}
        assert (await c.post("/admin/routing", json={}, headers=admin)).status_code == 200


async def test_idempotency_replays_and_refuses_a_reused_key(toy: Toy, world: World) -> None:
    async with client(toy) as c:
        first = (await rank(c, ask(world, 4))).json()
        again = await rank(c, ask(world, 4))
        assert again.json() == {**first, "replayed": True}
        changed = await rank(c, ask(world, 4, k=2))
        assert changed.status_code == 422
        assert changed.json()["field"] == "Idempotency-Key"
        keyed = await rank(c, ask(world, 5), **{"Idempotency-Key": "key-1"})
        reused = await rank(c, ask(world, 6), **{"Idempotency-Key": "key-1"})
        assert (keyed.status_code, reused.status_code) == (200, 422)
    assert toy.log.count() == 2


async def test_routing_is_an_immutable_value_swapped_whole(toy: Toy, world: World) -> None:
    before = toy.deployment.routing
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.canary_percent = 50  # type: ignore[misc]
    admin = {"X-API-Key": ADMIN_KEY}
    async with client(toy) as c:
        r = await c.post("/admin/routing", json={"challenger": 2, "canary_percent": 50},
                         headers=admin)  # fmt: skip
        assert r.json() == {"champion": "toy:1", "challenger": "toy:2", "canary_percent": 50.0,
                            "shadow": False}  # fmt: skip
        assert before.challenger is None, "a snapshot taken before keeps its routing"
        by_user: dict[str, set[str]] = {}
        for i in range(80):
            body = ask(world, 100 + i, user=f"user-{i % 20}")
            by_user.setdefault(body["user"], set()).add(
                (await rank(c, body)).json()["model_version"]
            )
        assert all(len(v) == 1 for v in by_user.values()), "a routing key stays on one side"
        assert {next(iter(v)) for v in by_user.values()} == {"toy:1", "toy:2"}
        await c.post("/admin/routing", json={"canary_percent": 0, "shadow": True}, headers=admin)
        answer = (await rank(c, ask(world, 300))).json()
        assert answer["model_version"] == "toy:1", "the shadow never answers"
    assert "r-300" in toy.log.joined().request_ids
    pairs = toy.log.shadow_pairs("toy:2", labelled_before_ms=2**62)
    assert pairs.calls == 1
    with sqlite3.connect(toy.log.path) as db:  # type: ignore[attr-defined]
        shadow = db.execute("SELECT shadow_model, shadow_outputs FROM predictions "
                            "WHERE request_id = 'r-300'").fetchone()  # fmt: skip
    assert shadow[0] == "toy:2"
    assert len(json.loads(shadow[1])["items"]) == 5


async def test_blue_green_reload_rollback_and_registry_watch(
    toy: Toy, world: World, toy_registry: Registry
) -> None:
    admin = {"X-API-Key": ADMIN_KEY}
    seen: list[str] = []
    toy.deployment.on_champion = lambda model: seen.append(model.label)
    async with client(toy) as c:
        assert (await c.post("/admin/model/rollback", headers=admin)).status_code == 409
        r = await c.post("/admin/model/reload", json={"version": 2}, headers=admin)
        assert r.json() == {"champion": "toy:2"}
        assert (await rank(c, ask(world, 400))).json()["model_version"] == "toy:2"
        r = await c.post("/admin/model/rollback", headers=admin)
        assert r.json() == {"champion": "toy:1"}
        r = await c.post("/admin/routing", json={"challenger": 99}, headers=admin)
        assert r.status_code == 422
        assert "no version or alias" in r.json()["error"]
        assert (await c.post("/admin/explode", headers=admin)).status_code == 404
    assert seen == ["toy:2", "toy:1"], "every new champion is announced"
    toy_registry.promote("toy", 2)
    try:
        watch = asyncio.ensure_future(
            toy.deployment.follow(lambda: toy_registry.get("toy", "champion").version, 0.01)
        )
        await asyncio.sleep(0.3)
        assert toy.deployment.routing.champion.label == "toy:1", "the rollback sticks"
        await toy.deployment.reload(1)  # an explicit reload ends the rollback's hold
        for _ in range(200):
            await asyncio.sleep(0.01)
            if toy.deployment.routing.champion.label == "toy:2":
                break
        watch.cancel()
    finally:
        toy_registry.promote("toy", 1)
    assert toy.deployment.routing.champion.label == "toy:2"
    assert toy.deployment.routing.previous is not None
    assert toy.deployment.swaps == 1


async def test_a_failing_model_falls_back_to_the_previous_version(toy: Toy, world: World) -> None:
    good = toy.deployment.routing.champion
    broken = dataclasses.replace(good, version=9, onnx=None, booster=None)  # type: ignore[type-var]
    toy.deployment.routing = Routing(champion=broken, previous=good)
    async with client(toy) as c:
        body = (await rank(c, ask(world, 500))).json()
    assert body["model_version"] == "toy:1"
    assert body["degraded"] == ["model_error:toy:9", "previous_model"]


async def test_back_pressure_and_a_slow_log_answer_503_and_the_retry_is_replayed(
    tmp_path: Path, toy_registry: Registry, world: World
) -> None:
    full = build(tmp_path / "full", toy_registry, world, limits=Limits(max_inflight=0))
    async with client(full) as c:
        r = await rank(c, ask(world, 600))
    assert (r.status_code, r.headers["retry-after"]) == (503, "1")
    full.close()
    toy = build(tmp_path / "slow", toy_registry, world)
    write = toy.log.write

    async def slow(row: Any) -> None:  # a disk or database that lags
        await asyncio.sleep(0.3)
        await write(row)

    toy.log.write = slow  # type: ignore[method-assign]
    async with client(toy) as c:
        r = await rank(c, ask(world, 601))
        assert r.status_code == 503
        assert "not durable" in r.json()["error"]
        await asyncio.sleep(0.5)  # the shed answer's commit goes on and lands
        again = await rank(c, ask(world, 601))
        assert again.json()["replayed"] is True
    assert toy.log.count() == 1
    toy.close()


async def test_a_log_write_that_fails_in_time_is_no_answer(
    tmp_path: Path, toy_registry: Registry, world: World
) -> None:
    """Durable before answered: a write that fails at once (a database error) must fail
    the request and release its key, never return a 200 that no log holds."""
    toy = build(tmp_path / "broken", toy_registry, world)

    async def broken(row: Any) -> None:
        raise OSError("disk full")

    write = toy.log.write
    toy.log.write = broken  # type: ignore[method-assign]
    async with client(toy) as c:
        with pytest.raises(OSError, match="disk full"):
            await rank(c, ask(world, 602))
        toy.log.write = write  # type: ignore[method-assign]
        again = await rank(c, ask(world, 602))  # the key was released: decided afresh
        assert again.status_code == 200
        assert again.json()["replayed"] is False
    assert toy.log.count() == 1
    toy.close()


async def test_a_streamed_answer_arrives_as_events_and_is_logged_whole(
    toy: Toy, world: World
) -> None:
    async with client(toy) as c, c.stream("POST", "/v1/rank/stream", json=ask(world, 700, k=4),
                        headers={"X-API-Key": SCORE_KEY}) as r:  # fmt: skip
        assert r.headers["content-type"] == "text/event-stream"
        events = [line async for line in r.aiter_lines() if line.startswith("data: ")]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert [c["rank"] for c in chunks] == [0, 1, 2, 3]
    assert events[-1] == "data: [DONE]"
    stored = toy.log.find("r-700")
    assert stored is not None
    assert json.loads(stored.response)["items"] == [c["item"] for c in chunks]


async def test_a_stream_whose_caller_goes_away_is_cancelled(toy: Toy, world: World) -> None:
    """Over a real socket: the client reads two events and hangs up."""
    import httpx
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(toy.service, host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="off"))  # fmt: skip
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        body, headers = ask(world, 800, k=20), {"X-API-Key": SCORE_KEY}
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c,
            c.stream("POST", "/v1/rank/stream", json=body, headers=headers) as r,
        ):
            got = 0
            async for line in r.aiter_lines():
                got += line.startswith("data: ")
                if got == 2:
                    break
        for _ in range(100):
            await asyncio.sleep(0.02)
            if toy.service.metrics.cancelled._value.get() == 1:
                break
    finally:
        server.should_exit = True
        await serving
    assert toy.service.metrics.cancelled._value.get() == 1
    assert toy.log.find("r-800") is None, "a cancelled answer is not logged"
    assert toy.service.inflight == 0


async def test_metrics_stay_bounded_and_openapi_lists_the_endpoints(toy: Toy, world: World) -> None:
    async with client(toy) as c:
        await rank(c, ask(world, 900))
        for i in range(50):
            await c.post(f"/admin/nope-{i}", headers={"X-API-Key": ADMIN_KEY})
            await c.get(f"/random/{i}")
        metrics = (await c.get("/metrics")).text
        schema = (await c.get("/openapi.json")).json()
    routes = {line.split('route="')[1].split('"')[0] for line in metrics.splitlines()
              if line.startswith("loopline_http_requests_total{")}  # fmt: skip
    assert routes == {"POST /v1/rank", "other"}, "unknown paths share one series"
    assert 'loopline_decisions_total{arm="champion",decision="ranked",model="toy:1"}' in metrics
    assert 'loopline_model_loaded{model="toy:1",role="champion"} 1.0' in metrics
    assert schema["info"]["title"] == "toy ranking"
    assert {"/v1/rank", "/v1/rank/stream", "/v1/upload"} <= set(schema["paths"])
    assert "RankRequest" in schema["components"]["schemas"]
    stream = schema["paths"]["/v1/rank/stream"]["post"]["responses"]["200"]["content"]
    assert list(stream) == ["text/event-stream"]


async def test_a_commit_wait_gives_up_on_time_and_leaves_the_write_running() -> None:
    from loopline.serving.loop import within as _within

    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    done.set_result(None)
    assert await _within(done, 0.01)  # already durable: no wait
    slow = asyncio.ensure_future(asyncio.sleep(0.2))
    assert not await _within(slow, 0.01)  # late: the caller is told, the write goes on
    assert not slow.cancelled()
    assert await _within(slow, 5.0)  # and lands
    waiter = asyncio.ensure_future(_within(work := asyncio.ensure_future(asyncio.sleep(0.05)), 5))
    await asyncio.sleep(0)
    waiter.cancel()  # a caller that goes away does not cancel the write
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await work
    assert not work.cancelled()
