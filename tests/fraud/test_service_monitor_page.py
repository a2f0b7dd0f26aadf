"""The monitoring page, served by a running service and rendered by headless Chromium:
it loads with no console errors and its charts draw (a screenshot is kept)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from loopline.apps.fraud.service import FraudService
from loopline.predictions import Label

from .conftest import ADMIN_KEY, SCORE_KEY
from .test_service import tx

DAY = 86_400_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_monitoring_page_renders_in_chromium(service: FraudService, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium (Debian package) is installed by make test"
    service.page.sampler.every_s = 0.2
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            service.service, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            for i in range(60):
                r = c.post("/v1/score", json=tx(100 + i), headers={"X-API-Key": SCORE_KEY})
                assert r.status_code == 200, r.text
                time.sleep(0.02)
            service.log.add_labels(
                [Label(f"t-{100 + i}", float(i % 10 == 0), DAY) for i in range(60)], keep="max"
            )
            monitor = service.drift.monitor
            assert monitor is not None
            monitor.min_rows = 1
            monitor.window_ms = None  # the newest rows, however recent
            assert service.drift.check() is not None
            time.sleep(0.5)
            service.page.refresh()  # what the page's task does every minute
            assert c.get("/monitor/data").status_code == 401, "the data needs a key"
            data = c.get("/monitor/data", headers={"X-API-Key": ADMIN_KEY}).json()
            assert len(data["series"]["t"]) >= 2
            assert data["drift"]
            assert data["performance"]
        shot = tmp_path / "monitor.png"
        flags = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
                 "--virtual-time-budget=4000", "--window-size=1280,1500"]  # fmt: skip
        url = f"http://127.0.0.1:{port}/monitor#key={ADMIN_KEY}"
        dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                             timeout=120)  # fmt: skip
        subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if re.search(r"error|uncaught", line, re.I)], console
    html = dom.stdout
    assert 'data-rendered="ok"' in html, "the page's script ran to the end"
    assert html.count("<polyline") >= 3, "throughput, latency and decision lines drawn"
    assert html.count("<rect") >= 2, "model-version band and drift bars drawn"
    assert re.search(r"<td>\d{4}-\d{2}-\d{2}</td>", html), "the matured days' table"
    assert ">waiting for traffic<" not in html
    assert ">no drift check yet<" not in html
    assert shot.exists(), "a screenshot was taken"
    assert shot.stat().st_size > 10_000
