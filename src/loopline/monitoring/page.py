"""The monitoring page a service serves at ``/monitor``.

It shows throughput, latency percentiles, answers by outcome, the model versions over
time, drift per input and the matured performance by day. :class:`Sampler` reads the
service's own Prometheus registry every few seconds (never on the request path) and
keeps the last hour. The page is one self-contained HTML file with no outside
resources: its script fetches ``/monitor/data`` and draws SVG charts, and it redraws
every 5 s (``monitor.html``, next to this module).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry

from loopline.monitoring.monitor import DriftWatch

log = logging.getLogger("loopline.monitoring")
PAGE = (Path(__file__).with_name("monitor.html")).read_bytes()  # self-contained: no CDN
_json = msgspec.json.Encoder()


@dataclass(frozen=True)
class Sample:
    at_ms: int
    requests: float  # requests to the counted routes since the start
    decisions: dict[str, float]  # by outcome, since the start
    buckets: list[tuple[float, float]]  # latency: (upper bound s, cumulative count)
    champion: str


@dataclass
class Sampler:
    """The service's counters of ``routes`` every ``every_s`` seconds, the newest
    ``keep`` of them."""

    registry: CollectorRegistry
    champion: Callable[[], str]  # the champion's label
    routes: Collection[str]  # e.g. {"POST /v1/score"}
    every_s: float = 5.0
    keep: int = 720
    samples: deque[Sample] = field(default_factory=deque)

    def sample(self) -> Sample:
        requests = 0.0
        decisions: dict[str, float] = {}
        buckets: dict[float, float] = {}
        for family in self.registry.collect():
            for s in family.samples:
                route = s.labels.get("route")
                if s.name == "loopline_http_requests_total" and route in self.routes:
                    requests += s.value
                elif s.name == "loopline_decisions_total":
                    d = s.labels["decision"]
                    decisions[d] = decisions.get(d, 0.0) + s.value
                elif s.name == "loopline_http_request_seconds_bucket" and route in self.routes:
                    le = float(s.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + s.value
        got = Sample(
            int(time.time() * 1000), requests, decisions, sorted(buckets.items()), self.champion()
        )
        self.samples.append(got)
        while len(self.samples) > self.keep:
            self.samples.popleft()
        return got

    async def run(self) -> None:
        """Sample every ``every_s``, forever."""
        while True:
            self.sample()
            await asyncio.sleep(self.every_s)


def series(samples: list[Sample]) -> dict[str, Any]:
    """Rates and latency percentiles between consecutive samples."""
    out: dict[str, list[Any]] = {
        "t": [], "rps": [], "p50_ms": [], "p99_ms": [], "decisions": [], "champion": [],
    }  # fmt: skip
    for a, b in pairwise(samples):
        dt = max((b.at_ms - a.at_ms) / 1000, 1e-9)
        out["t"].append(b.at_ms)
        out["rps"].append((b.requests - a.requests) / dt)
        delta = [(le, cb - dict(a.buckets).get(le, 0.0)) for le, cb in b.buckets]
        out["p50_ms"].append(_quantile(delta, 0.5))
        out["p99_ms"].append(_quantile(delta, 0.99))
        out["decisions"].append(
            {k: (v - a.decisions.get(k, 0.0)) / dt for k, v in b.decisions.items()}
        )
        out["champion"].append(b.champion)
    return out


def _quantile(cumulative: list[tuple[float, float]], q: float) -> float | None:
    """The q-quantile in ms from cumulative histogram buckets (linear within a bucket)."""
    if not cumulative or cumulative[-1][1] <= 0:
        return None
    total, target = cumulative[-1][1], q * cumulative[-1][1]
    low_bound, low_count = 0.0, 0.0
    for le, count in cumulative:
        if count >= target:
            if math.isinf(le):
                return low_bound * 1000
            share = (target - low_count) / max(count - low_count, 1e-12)
            return (low_bound + share * (le - low_bound)) * 1000
        low_bound, low_count = le, count
    return low_bound * 1000 if total else None


@dataclass
class MonitorPage:
    """What ``/monitor`` draws: the sampler's series, the champion, the drift watch's
    last report and ``performance()`` (matured performance by day: dataclasses, e.g.
    :class:`loopline.feedback.DayPerformance`).

    ``performance()`` reads the prediction log (a scan of its last weeks), so it runs
    on a thread every ``performance_every_s`` (:meth:`run`), never per page view and
    never on the event loop; the page shows the last result."""

    title: str
    sampler: Sampler
    drift: DriftWatch | None = None
    performance: Callable[[], list[Any]] | None = None
    performance_every_s: float = 60.0
    last_performance: list[Any] = field(default_factory=list)

    def refresh(self) -> None:
        """Compute the matured performance now (on the caller's thread)."""
        if self.performance is not None:
            self.last_performance = self.performance()

    async def run(self) -> None:
        """Refresh the matured performance every ``performance_every_s``, forever."""
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # a slow or broken log must not stop the page
                log.warning("matured performance not refreshed", exc_info=True)
            await asyncio.sleep(self.performance_every_s)

    def data(self) -> dict[str, Any]:
        last = self.drift.last if self.drift is not None else None
        rows = self.last_performance
        return {
            "title": self.title,
            "series": series(list(self.sampler.samples)),
            "champion": self.sampler.champion(),
            "drift": [
                {"feature": r.feature, "psi": r.psi, "statistic": r.statistic, "drifted": r.drifted}
                for r in (last.results if last else [])
            ],
            "performance": [asdict(p) for p in rows],
        }

    def pages(self) -> dict[str, Callable[[], tuple[bytes, bytes]]]:
        """The page's HTML (no data in it: served without a key)."""
        return {"/monitor": lambda: (b"text/html; charset=utf-8", PAGE)}

    def reports(self) -> dict[str, Callable[[], tuple[bytes, bytes]]]:
        """What the page draws (served to keys with the ``monitor`` scope)."""
        return {"/monitor/data": lambda: (b"application/json", _json.encode(self.data()))}
