"""A soak: sustained load on a running service for minutes, watching its memory.

Requests are POSTed open loop at a fixed rate (each at its scheduled time, whatever the
service does, so a slow service shows as latency, not as a lower rate). A 503 (shed:
the answer was not durable in time) is asked again after its Retry-After, as a payment
switch would, and counted as shed; a request that never gets its 200 (another status,
a failed or timed-out request, five 503s in a row) is an error. The service process's
resident memory (``/proc/PID/status`` VmRSS) is sampled every second.

Memory growth compares the median over the last ``window_s`` with the median over the
``window_s`` right after warm-up: caches, the interpreter's arenas and the features of
entities seen for the first time fill up during warm-up; what grows after it is a leak.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from loopline.exceptions import ConfigError


@dataclass
class SoakResult:
    seconds: float
    rate: float  # requests scheduled per second
    warmup_s: float
    window_s: float
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # final: "200", "ReadTimeout"
    shed: int = 0  # 503s answered, then asked again
    latencies_ms: list[float] = field(default_factory=list)  # from each scheduled time
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds in, MiB)
    refusals: list[str] = field(default_factory=list)  # the first few errors' bodies

    @property
    def errors(self) -> int:
        return self.sent - self.statuses["200"]

    @property
    def error_rate(self) -> float:
        return self.errors / self.sent if self.sent else 0.0

    def _median_rss(self, lo: float, hi: float) -> float:
        window = [mb for t, mb in self.rss_mb if lo <= t < hi]
        if not window:
            raise ValueError(f"no memory samples between {lo:.0f} s and {hi:.0f} s")
        return statistics.median(window)

    @property
    def warm_mb(self) -> float:
        """Median resident memory over the window right after warm-up."""
        return self._median_rss(self.warmup_s, self.warmup_s + self.window_s)

    @property
    def end_mb(self) -> float:
        """Median resident memory over the last window."""
        return self._median_rss(self.seconds - self.window_s, self.seconds + 1)

    @property
    def growth(self) -> float:
        """Memory growth after warm-up, as a fraction (0.05: 5 %)."""
        return self.end_mb / self.warm_mb - 1

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "rate_tps": self.rate,
            "sent": self.sent,
            "answered_tps": round(self.statuses["200"] / self.seconds, 1),
            "errors": self.errors,
            "error_rate": self.error_rate,
            "statuses": dict(self.statuses),
            "shed_then_retried": self.shed,
            "p50_ms": round(self.percentile_ms(0.5), 2),
            "p99_ms": round(self.percentile_ms(0.99), 2),
            "warmup_s": self.warmup_s,
            "rss_after_warmup_mb": round(self.warm_mb, 1),
            "rss_end_mb": round(self.end_mb, 1),
            "rss_growth": round(self.growth, 4),
            "refusals": self.refusals,
        }


def rss_mb(pid: int) -> float:
    """The resident memory of process ``pid``, in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"process {pid} reports no VmRSS")


def check(seconds: float, warmup_s: float, window_s: float) -> None:
    """Refuse a soak too short to compare a window after warm-up with a last one."""
    if seconds < warmup_s + 2 * window_s:
        raise ConfigError(
            f"soak seconds={seconds:g}: must be at least warmup_s + 2 * window_s "
            f"({warmup_s + 2 * window_s:g}) to compare memory after warm-up with the end."
        )


async def soak(
    port: int,
    key: str,
    pid: int,
    bodies: list[dict[str, Any]],
    *,
    path: str,
    seconds: float,
    rate: float,
    warmup_s: float = 30.0,
    window_s: float = 15.0,
    connections: int = 8,
    progress: bool = True,
) -> SoakResult:
    """POST ``bodies`` (in order, from the first) to ``path`` of the service on ``port``
    at ``rate`` per second for ``seconds``, sampling the memory of process ``pid``."""
    check(seconds, warmup_s, window_s)
    needed = int(seconds * rate)
    if len(bodies) < needed:
        raise ConfigError(
            f"soak: {len(bodies)} request bodies for {needed} requests "
            f"({seconds:g} s at {rate:g}/s); give more."
        )
    result = SoakResult(seconds=seconds, rate=rate, warmup_s=warmup_s, window_s=window_s)
    started = time.perf_counter() + 0.1

    async def caller(first: int) -> None:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=10
        ) as client:
            for i in range(first, needed, connections):
                due = started + i / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                result.sent += 1
                try:
                    r = await client.post(path, json=bodies[i])
                    result.latencies_ms.append((time.perf_counter() - due) * 1000)
                    for _ in range(5):
                        if r.status_code != 503:
                            break
                        result.shed += 1
                        await asyncio.sleep(float(r.headers.get("retry-after", 1)))
                        r = await client.post(path, json=bodies[i])
                except httpx.HTTPError as e:
                    result.statuses[type(e).__name__] += 1
                    continue
                result.statuses[str(r.status_code)] += 1
                if r.status_code != 200 and len(result.refusals) < 5:
                    result.refusals.append(f"{r.status_code} {r.text[:300]}")

    async def watch(bar: Progress) -> None:
        task = bar.add_task("soak", total=seconds)
        while (now := time.perf_counter() - started) < seconds + 1:
            mb = rss_mb(pid)
            result.rss_mb.append((now, mb))
            bar.update(task, completed=min(now, seconds), description=f"soak {mb:.0f} MiB")
            await asyncio.sleep(1.0)

    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress) as bar:
        watcher = asyncio.create_task(watch(bar))
        await asyncio.gather(*(caller(c) for c in range(connections)))
        await watcher
    return result
