"""A decision returned to a caller survives kill -9 of the service, and a retry after the
restart returns it again (idempotency across restarts). Real server: `loopline serve
fraud` (uvicorn) in a subprocess."""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from loopline.apps.fraud.privacy import find_pans
from loopline.registry import Registry
from loopline.serving import KeyRing

from .conftest import SCORE, SCORE_KEY
from .test_service import PAN, tx


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(
    state: Path, registry: Registry, keys: Path, port: int, *more: str
) -> subprocess.Popen[bytes]:
    loopline = str(Path(sys.executable).parent / "loopline")
    cmd = [loopline, "serve", "fraud", "--port", str(port), "--state", str(state)]
    cmd += ["--registry", registry.uri, "--keys", str(keys), *more]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(proc.stderr.read().decode()[-3000:] if proc.stderr else "no start")


def test_returned_decisions_survive_kill_9(tmp_path: Path, fraud_registry: Registry) -> None:
    keys = tmp_path / "keys.json"
    KeyRing([SCORE]).save(keys)
    state, port = tmp_path / "state", _port()
    proc = _start(state, fraud_registry, keys, port)
    answered: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            i = 0
            while not stop.is_set():
                body = tx(worker * 100_000 + i)
                if i % 10 == 0:  # some come from the edge with the card number
                    body = tx(worker * 100_000 + i, card_token=None, card_number=PAN)
                i += 1
                try:
                    r = c.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY})
                except httpx.HTTPError:
                    return  # the server died mid-request: that one was never answered
                if r.status_code == 200:
                    with lock:
                        answered[body["transaction_id"]] = r.json()["decision"]

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(random.uniform(1.5, 3.0))
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream, requests in flight
    proc.wait()
    output = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _close(proc)
    _assert_no_pans(output, state)
    stop.set()
    for t in threads:
        t.join()
    assert len(answered) > 50, "the service answered too little to test anything"
    with sqlite3.connect(state / "decisions.db") as db:
        stored = dict(db.execute("SELECT request_id, decision FROM predictions").fetchall())
    missing = [k for k in answered if k not in stored]
    assert missing == [], f"{len(missing)} answered decisions were lost"
    assert all(stored[k] == v for k, v in answered.items())

    proc = _start(state, fraud_registry, keys, port)  # restart on the same state
    try:
        some = sorted(answered)[:5]
        for transaction_id in some:
            worker, i = divmod(int(transaction_id.split("-")[1]), 100_000)
            body = tx(worker * 100_000 + i)
            if i % 10 == 0:
                body = tx(worker * 100_000 + i, card_token=None, card_number=PAN)
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/score", json=body, headers={"X-API-Key": SCORE_KEY}
            )
            assert r.status_code == 200
            assert r.json()["replayed"] is True
            assert r.json()["decision"] == answered[transaction_id]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        _close(proc)


def _assert_no_pans(output: str, state: Path) -> None:
    assert find_pans(output) == [], "the server's log holds no card number"
    for path in state.rglob("*"):
        if path.is_file():
            assert find_pans(path.read_bytes().decode("latin-1")) == [], path


def _close(proc: subprocess.Popen[bytes]) -> None:
    if proc.stderr is not None:
        proc.stderr.close()
