"""The Redis online store killed mid-run under load: the scoring process (`loopline serve
fraud --features redis://...`, a real uvicorn server) keeps deciding, rules only and
marked degraded, never with a 5xx; when redis-server is back on its port the model
decides again without a restart, and the decisions taken meanwhile are folded into the
store in bounded chunks (no stall past the budget). Every answered transaction has exactly
one decision, the one its caller got."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from loopline.registry import Registry
from loopline.servers import redis_server
from loopline.serving import KeyRing
from loopline.units import now_ms
from tests.fraud.conftest import SCORE, SCORE_KEY
from tests.fraud.test_service import tx
from tests.fraud.test_service_durability import _close, _port, _start

pytestmark = pytest.mark.redis

CALLERS = 3


def test_decisions_go_on_through_a_redis_outage_and_recover(
    tmp_path: Path, fraud_registry: Registry
) -> None:
    keys = tmp_path / "keys.json"
    KeyRing([SCORE]).save(keys)
    port, phase = _port(), ["up"]
    answers: list[tuple[str, str, int, dict[str, object]]] = []  # phase, tx id, status, body
    lock, stop = threading.Lock(), threading.Event()
    ids = iter(range(1_000_000))

    def caller() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            while not stop.is_set():
                with lock:
                    body, now = tx(next(ids)), phase[0]
                r = c.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY})
                got = r.json() if r.headers.get("content-type", "").endswith("json") else {}
                with lock:
                    answers.append((now, body["transaction_id"], r.status_code, got))

    def answered(name: str) -> list[dict[str, object]]:
        with lock:
            return [b for p, _, _, b in answers if p == name]

    with redis_server(tmp_path / "redis") as redis:
        rules = tmp_path / "rules.yaml"
        rules.write_text(
            "lists: {blocked_cards: [tok_blocked]}\nrules:\n"
            "  - {id: blocked-card, action: block, when: {field: card_token, in: blocked_cards}}\n"
        )
        more = ("--features", redis.url, "--rules", str(rules))
        proc = _start(tmp_path / "state", fraud_registry, keys, port, *more)
        threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
        try:
            for t in threads:
                t.start()
            time.sleep(3)
            redis.stop(kill=True)  # the store dies under load
            with lock:
                phase[0] = "down"
            time.sleep(3)
            blocked = httpx.post(
                f"http://127.0.0.1:{port}/v1/score",
                json=tx(10_000_000, card_token="tok_blocked", event_time_ms=now_ms()),
                headers={"X-API-Key": SCORE_KEY},
                timeout=10,
            )
            outage_lag = _learn_lag_s(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
            time.sleep(3)
            redis.start()  # back on the same port, with its append-only file
            with lock:
                phase[0] = "back"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # until the model decides again, steadily
                time.sleep(0.5)
                recent = answered("back")[-20:]
                if len(recent) == 20 and all(not b["degraded"] for b in recent):
                    break
            while time.monotonic() < deadline:  # and the outage's backlog is in the store
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                if _learn_lag_s(metrics) < 1.0:
                    break
                time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
            proc.terminate()
            proc.wait(timeout=30)
            server_log = proc.stderr.read().decode()[-3000:] if proc.stderr else ""
            _close(proc)

    statuses = Counter(status for _, _, status, _ in answers)
    refused = [(p, s, b) for p, _, s, b in answers if s != 200]
    assert not refused, f"every request answered 200, got {statuses}: {refused}\n{server_log}"
    up, down, back = answered("up"), answered("down"), answered("back")
    assert min(len(up), len(down)) > 20, "too few requests to test anything"
    assert sum(not b["degraded"] for b in up) > 0.9 * len(up)
    outage = down[len(down) // 4 :]  # once the breaker has opened
    assert all(b["degraded"] == ["features_unavailable", "rules_only"] for b in outage)
    assert all(b["model_version"] == "rules-only" for b in outage)
    recovered = back[-20:]
    assert all(not b["degraded"] for b in recovered), "the model decides again"
    assert {b["model_version"] for b in recovered} == {"fraud:1"}
    assert blocked.status_code == 200
    assert blocked.json()["decision"] == "decline", "the rules still block without the store"
    assert 'loopline_circuit_open{dependency="features"} 0.0' in metrics
    assert outage_lag > 2.0, "decisions wait for the store while it is away"
    assert _learn_lag_s(metrics) < 1.0, "the decisions of the outage are learned"
    assert 'loopline_degraded_total{cause="rules_only"}' in metrics

    with sqlite3.connect(tmp_path / "state" / "decisions.db") as db:
        rows = dict(db.execute("SELECT request_id, decision FROM predictions").fetchall())
        count = db.execute("SELECT count(*) FROM predictions").fetchone()[0]
    assert count == len(rows) == len(answers) + 1, "exactly one decision per answered one"
    assert all(rows[t] == b["decision"] for _, t, _, b in answers)


def _learn_lag_s(metrics: str) -> float:
    """The age of the oldest decision not yet folded into the online features."""
    found = re.search(r"^loopline_learn_lag_seconds (\S+)$", metrics, re.MULTILINE)
    assert found, "the service exports loopline_learn_lag_seconds"
    return float(found.group(1))
