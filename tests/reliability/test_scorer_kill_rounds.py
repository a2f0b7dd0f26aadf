"""kill -9 of the scoring process (`loopline serve fraud`, a real uvicorn server) at random
points under load, 10 rounds on the same state. Callers retry what was not answered, as
a payment switch would with the same transaction id. Afterwards every transaction has
exactly one decision, each answered one is the decision its caller got, and asking
again returns it (replayed), not a second one."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from loopline.registry import Registry
from loopline.serving import KeyRing
from tests.fraud.conftest import SCORE, SCORE_KEY
from tests.fraud.test_service import tx
from tests.fraud.test_service_durability import _close, _port, _start

ROUNDS = 10
CLIENTS = 4


def test_every_acknowledged_transaction_has_one_decision_after_10_kills(  # noqa: C901
    tmp_path: Path, fraud_registry: Registry
) -> None:
    keys = tmp_path / "keys.json"
    KeyRing([SCORE]).save(keys)
    state, port = tmp_path / "state", _port()
    rng = random.Random(7)
    pending = [tx(i) for i in range(100_000)]  # served from the end; unanswered go back
    answered: dict[str, str] = {}
    lock = threading.Lock()

    def caller(stop: threading.Event) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            while not stop.is_set():
                with lock:
                    body = pending.pop()
                try:
                    r = c.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY})
                except httpx.HTTPError:
                    r = None  # died mid-request: unanswered
                with lock:
                    if r is not None and r.status_code == 200:
                        answered[body["transaction_id"]] = r.json()["decision"]
                    else:
                        pending.append(body)  # ask again, in the next round
                if r is None:
                    return

    for _ in range(ROUNDS):
        proc = _start(state, fraud_registry, keys, port)
        stop = threading.Event()
        threads = [threading.Thread(target=caller, args=(stop,)) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.5))
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream, requests in flight
        proc.wait()
        _close(proc)
        stop.set()
        for t in threads:
            t.join()

    assert len(answered) > 300, "too few answers to test anything"
    sent = {int(k.split("-")[1]) for k in answered} | {
        int(b["transaction_id"].split("-")[1]) for b in pending
    }
    proc = _start(state, fraud_registry, keys, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            again = [tx(i) for i in sorted(sent)[:: max(len(sent) // 200, 1)]]
            for body in again:  # answered ones replayed; the rest decided once now
                r = c.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY})
                assert r.status_code == 200, r.text
                got: dict[str, Any] = r.json()
                if body["transaction_id"] in answered:
                    assert got["replayed"] is True
                    assert got["decision"] == answered[body["transaction_id"]]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        _close(proc)

    with sqlite3.connect(state / "decisions.db") as db:
        rows = db.execute("SELECT request_id, decision FROM predictions").fetchall()
    counts = Counter(t for t, _ in rows)
    assert max(counts.values()) == 1, "a transaction was decided twice"
    stored = dict(rows)
    lost = [k for k in answered if k not in stored]
    assert lost == [], f"{len(lost)} answered decisions were lost"
    assert all(stored[k] == v for k, v in answered.items())
