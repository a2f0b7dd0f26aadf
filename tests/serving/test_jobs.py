"""Work answered later (loopline.serving.Jobs), and the kernel's lookup routes that answer
polls for it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopline.serving import Jobs, KeyRing, RequestError, Service, running
from tests.serving.conftest import Toy
from tests.toyapp import SCORE, SCORE_KEY

pytestmark = pytest.mark.anyio


def failed(key: str, error: str) -> bytes:
    return json.dumps({"key": key, "status": "failed", "error": error}).encode()


def wait_for(jobs: Jobs, key: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = jobs.get(key)
        if body is not None and done(json.loads(body)):
            return dict(json.loads(body))
        time.sleep(0.01)
    raise AssertionError(f"job {key} did not finish")


def test_work_runs_later_and_failures_are_answers(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path / "jobs.db", failed=failed)
    try:
        jobs.submit("a", lambda: b'{"status": "done", "n": 1}', pending=b'{"status": "pending"}')
        jobs.submit("b", lambda: 1 / 0, pending=b'{"status": "pending"}')  # type: ignore[arg-type,return-value]
        assert wait_for(jobs, "a", lambda b: b["status"] != "pending") == {"status": "done", "n": 1}
        bad = wait_for(jobs, "b", lambda b: b["status"] != "pending")
        assert bad["status"] == "failed"
        assert bad["key"] == "b"
        assert "division" in bad["error"]
        assert jobs.get("missing") is None
    finally:
        jobs.close()


def test_a_full_queue_refuses_and_a_restart_fails_what_was_in_flight(tmp_path: Path) -> None:
    import threading

    started, gate = threading.Event(), threading.Event()

    def slow() -> bytes:
        started.set()
        gate.wait(5)
        return b'{"status": "done"}'

    jobs = Jobs(tmp_path / "jobs.db", failed=failed, max_pending=1)
    jobs.submit("slow", slow, pending=b'{"status": "pending"}')
    assert started.wait(5)  # the worker holds "slow"; the queue has room for one
    jobs.submit("next", lambda: b'{"status": "done"}', pending=b'{"status": "pending"}')
    assert jobs.full
    with pytest.raises(RequestError) as refused:
        jobs.submit("third", lambda: b"{}", pending=b'{"status": "pending"}')
    assert refused.value.status == 503
    assert jobs.get("third") is None
    with pytest.raises(RequestError) as again_key:
        jobs.submit("next", lambda: b"{}", pending=b'{"status": "pending"}')
    assert again_key.value.status == 409  # still pending under that key
    assert json.loads(jobs.get("next") or b"{}")["status"] == "pending"  # not overwritten
    # a crash: another process opens the same file while "next" is still pending
    again = Jobs(tmp_path / "jobs.db", failed=failed)
    lost = json.loads(again.get("next") or b"{}")
    assert lost["status"] == "failed"
    assert lost["key"] == "next"
    gate.set()
    jobs.close()
    again.close()


def test_answers_are_posted_to_the_callback(tmp_path: Path) -> None:
    received: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        message = await receive()
        received.append(message.get("body", b""))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with running(app) as port:
        hook = f"http://127.0.0.1:{port}/hook"
        guarded = Jobs(tmp_path / "guarded.db", failed=failed)  # loopback is refused
        guarded.submit("c", lambda: b'{"status": "done"}', pending=b"{}", callback=hook)
        guarded.close()
        assert guarded.callbacks_failed == 1
        jobs = Jobs(tmp_path / "jobs.db", failed=failed, private_callbacks=True)
        jobs.submit("c", lambda: b'{"status": "done"}', pending=b"{}", callback=hook)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
        jobs.close()
    assert received == [b'{"status": "done"}']


async def test_a_lookup_route_answers_polls(tmp_path: Path, toy: Toy) -> None:
    jobs = Jobs(tmp_path / "jobs.db", failed=failed)
    jobs.submit("k-1", lambda: b'{"status": "done"}', pending=b'{"status": "pending"}',
                owner="caller")  # fmt: skip
    jobs.submit("k-2", lambda: b'{"status": "done"}', pending=b'{"status": "pending"}',
                owner="someone else")  # fmt: skip
    wait_for(jobs, "k-1", lambda b: b["status"] == "done")
    lookups = {"/v1/jobs/": ("score", jobs.get)}
    service = Service(endpoints=[], deployment=toy.deployment, log=toy.log,
                      keys=KeyRing([SCORE]), lookups=lookups)  # fmt: skip
    transport = httpx.ASGITransport(app=service)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        key = {"X-API-Key": SCORE_KEY}
        r = await c.get("/v1/jobs/k-1", headers=key)
        assert r.status_code == 200
        assert r.json() == {"status": "done"}
        assert (await c.get("/v1/jobs/k-1")).status_code == 401
        assert (await c.get("/v1/jobs/k-2", headers=key)).status_code == 404  # not theirs
        missing = await c.get("/v1/jobs/nope", headers=key)
        assert missing.status_code == 404
        assert missing.json()["field"] == "key"
        assert (await c.get("/v1/jobs/a%2Fb", headers=key)).status_code == 404
        document = (await c.get("/openapi.json")).json()
        assert "/v1/jobs/{key}" in document["paths"]
        metrics = (await c.get("/metrics")).text
        assert 'route="GET /v1/jobs/{key}"' in metrics
        assert "k-1" not in metrics  # keys are not metric labels
    jobs.close()
