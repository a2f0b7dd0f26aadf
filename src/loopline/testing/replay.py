"""Requests POSTed to running services, as their callers would: a load generator for
demos and tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

MAX_RETRIES = 5


class HttpReplay:
    """POSTs request bodies to ``path`` of the services on ``ports``, ``connections`` at
    a time to each (spread as a load balancer would). A 503 is asked again after its
    Retry-After, up to ``MAX_RETRIES`` times; anything but a 200 in the end is an error.

    Records each first attempt's latency (ms), the answered requests' ids (their
    ``id_field``), how many were shed and asked again, and the wall time spent posting."""

    def __init__(
        self,
        ports: list[int],
        key: str,
        *,
        path: str,
        id_field: str,
        connections: int,
        advance: Callable[[int], object] = lambda n: None,
    ) -> None:
        self.ports, self.key, self.connections, self.advance = ports, key, connections, advance
        self.path, self.id_field = path, id_field
        self.latencies: list[float] = []
        self.answered: list[str] = []
        self.retried = 0
        self.wall_s = 0.0

    async def post(self, bodies: list[dict[str, Any]]) -> None:
        """Every body, each until answered."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)
        started = time.perf_counter()
        clients = [
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": self.key})
            for port in self.ports
            for _ in range(self.connections)
        ]
        try:
            await asyncio.gather(*(self._caller(c, queue) for c in clients))
        finally:
            for c in clients:
                await c.aclose()
        self.wall_s += time.perf_counter() - started

    async def _caller(
        self, client: httpx.AsyncClient, queue: asyncio.Queue[dict[str, Any]]
    ) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            sent = time.perf_counter()
            r = await client.post(self.path, json=body)
            self.latencies.append((time.perf_counter() - sent) * 1000)
            for _ in range(MAX_RETRIES):
                if r.status_code != 503:
                    break
                self.retried += 1  # shed: as its Retry-After says, ask again
                await asyncio.sleep(float(r.headers.get("retry-after", 1)))
                r = await client.post(self.path, json=body)
            if r.status_code != 200:
                raise RuntimeError(f"POST {self.path} answered {r.status_code}: {r.text[:300]}")
            self.answered.append(body[self.id_field])
            self.advance(1)
