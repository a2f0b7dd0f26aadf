"""Instrumentation overhead on the request path: the decision service with its metrics and
tracing (1 % of traces sampled) against the same service with neither, in one process.

    python benchmarks/instrumentation.py [--requests N] [--rounds R] [--json]

Requests go straight to the ASGI application (no sockets, one at a time), so the
difference is the instrumentation alone. The two services alternate, R rounds of N
requests each (the order flips every round), pinned to one core; the table gives
medians of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from loopline.apps.fraud.service import ServeOptions, build
from loopline.apps.fraud.train import TrainOptions, run
from loopline.monitoring import Tracing
from loopline.registry import Registry
from loopline.serving import KeyRing, Limits, Metrics, Service, new_key


class Silent(Metrics):
    """Metrics that record nothing: the baseline."""

    def request(self, route: str, status: int, seconds: float) -> None:
        pass

    def predicted(self, prediction: Any) -> None:
        pass


async def drive(service: Service, key: str, start: int, n: int) -> float:
    """Seconds per request for ``n`` new transactions."""
    headers = [(b"x-api-key", key.encode()), (b"content-type", b"application/json")]
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    began = time.perf_counter()
    for i in range(start, start + n):
        body = json.dumps(
            {"transaction_id": f"i-{i}", "amount": 5 + i % 200, "currency": "EUR",
             "channel": "cnp", "customer_id": f"c-{i % 3000}", "terminal_id": f"t-{i % 900}",
             "merchant_category": "grocery", "card_token": f"tok_{i % 3000}",
             "device_id": f"d-{i % 3000}", "latitude": 48.0, "longitude": 2.0}
        ).encode()  # fmt: skip

        async def receive(body: bytes = body) -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {"type": "http", "method": "POST", "path": "/v1/score", "headers": headers}
        await service(scope, receive, send)
    took = time.perf_counter() - began
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses == [200] * n, f"not all answered 200: {set(statuses)}"
    return took / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry = Registry(root=root / "registry")
        run(TrainOptions(source="simulator", seed=0, customers=500, days=90,
                         out=root / "models", registry=registry, progress=False))  # fmt: skip
        key, stored = new_key("bench", ["score"])
        KeyRing([stored]).save(root / "keys.json")
        os.sched_setaffinity(0, {0})
        services = {}
        for name in ("instrumented", "bare"):
            options = ServeOptions(state=root / name, registry=registry.uri,
                                   keys=root / "keys.json", watch_s=0,
                                   limits=Limits(commit_timeout_ms=10_000))  # fmt: skip
            services[name] = build(options)
        services["instrumented"].service.tracing = Tracing(sample_ratio=0.01)
        services["bare"].service.tracing = None
        services["bare"].service.metrics = Silent()
        per: dict[str, list[float]] = {name: [] for name in services}

        async def rounds() -> None:
            start = 0
            for svc in services.values():  # warm-up
                await drive(svc.service, key, start, args.requests)
            order = list(services)
            for _ in range(args.rounds):
                start += args.requests
                for name in order:
                    served = services[name].service
                    per[name].append(await drive(served, key, start, args.requests))
                order.reverse()  # neither always runs second, on caches the other warmed

        asyncio.run(rounds())
        for svc in services.values():
            svc.close()
    ours = statistics.median(per["instrumented"]) * 1e6
    bare = statistics.median(per["bare"]) * 1e6
    result = {
        "benchmark": "instrumentation",
        "us_per_request_instrumented": round(ours, 1),
        "us_per_request_bare": round(bare, 1),
        "overhead_percent": round((ours / bare - 1) * 100, 2),
    }
    if args.json:
        print(json.dumps(result))
        return
    table = Table(title="instrumentation on the request path (medians of rounds)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for k, v in result.items():
        if k != "benchmark":
            table.add_row(k, str(v), "<= 5" if k == "overhead_percent" else "")
    Console().print(table)


if __name__ == "__main__":
    main()
