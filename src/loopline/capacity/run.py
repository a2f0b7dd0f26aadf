"""Running a region (:func:`simulate`) and what comes out (:class:`Result`): counts of
what happened to each arrival, latency histograms (log-spaced bins, ~4 % wide), over
the whole run and per time bucket, and the servers up per bucket."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopline.capacity import kernel
from loopline.capacity.model import NONE, Distribution, Region, Traffic

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
LO, PER_DECADE, BINS = -7.0, 60.0, 600  # 100 ns to 1e3 s
COUNTS = ("arrived", "answered", "fallback", "shed", "lost_down", "lost_in_flight",
          "deadline_hits", "breaker_trips", "out_of_order_starts")  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Result:
    """What a run (or several regions' runs, :meth:`plus`) gave."""

    counts: dict[str, int]
    latency: I64  # per bin, answered
    latency_t: I64  # [bucket, bin]
    lag: I64  # per bin, the stream consumers' lag
    events_t: I64  # [bucket, (arrived, answered, fallback, lost)]
    servers_t: F64  # [bucket], the pool's servers up (the most in the bucket)
    sums: F64  # wait, latency, busy, lag (seconds)
    bucket_s: float

    @property
    def lost(self) -> int:
        """Arrivals never answered: shed, or lost with a region."""
        c = self.counts
        return c["shed"] + c["lost_down"] + c["lost_in_flight"]

    def mean_wait_s(self) -> float:
        return float(self.sums[0] / max(self.counts["answered"], 1))

    def quantile_ms(self, q: float, of: str = "latency") -> float:
        return _quantile(self.latency if of == "latency" else self.lag, q) * 1000

    def window_quantile_ms(self, q: float, start_s: float, end_s: float) -> float:
        """The q-quantile of the latency of the transactions that arrived from
        ``start_s`` to ``end_s`` (whole time buckets: those that start in the window;
        NaN where none was answered)."""
        first = max(math.ceil(start_s / self.bucket_s - 1e-9), 0)
        last = max(math.ceil(end_s / self.bucket_s - 1e-9), first)
        return _quantile(self.latency_t[first:last].sum(axis=0), q) * 1000

    def series_ms(self, q: float) -> F64:
        """The q-quantile of the latency per time bucket (NaN where none answered)."""
        return np.array([_quantile(row, q) * 1000 for row in self.latency_t])

    def plus(self, other: Result) -> Result:
        """Two regions' results as one (same buckets)."""
        return Result(
            counts={k: self.counts[k] + other.counts[k] for k in COUNTS},
            latency=self.latency + other.latency,
            latency_t=self.latency_t + other.latency_t,
            lag=self.lag + other.lag,
            events_t=self.events_t + other.events_t,
            servers_t=self.servers_t + other.servers_t,
            sums=self.sums + other.sums,
            bucket_s=self.bucket_s,
        )


def _quantile(hist: I64, q: float) -> float:
    total = int(hist.sum())
    if total == 0:
        return math.nan
    b = int(np.searchsorted(np.cumsum(hist), q * total))
    return float(10 ** (LO + (b + 0.5) / PER_DECADE))  # the bin's middle (log scale)


def _arrays(d: Distribution | None) -> tuple[F64, float]:
    return (NONE, 0.0) if d is None else (d.samples, d.mean)


def simulate(
    region: Region, traffic: Traffic, *, seconds: float, seed: int = 0, bucket_s: float = 5.0
) -> Result:
    """Run ``region`` under ``traffic`` for ``seconds`` (simulated)."""
    pool, shards, sink, stream = region.pool, region.shards, region.sink, region.stream
    cmax = pool.max_servers or pool.servers
    pool_p = np.array([pool.servers, cmax, pool.max_wait_s, pool.scale_period_s,
                       pool.scale_target, pool.scale_delay_s, region.down_at_s,
                       seconds])  # fmt: skip
    store_p = np.array([0.0, 0.0, 1.0, 0.0, region.partitions])
    if shards is not None:
        store_p[:4] = [shards.count, shards.deadline_s, shards.failures_to_open,
                       shards.reset_after_s]  # fmt: skip
    o_shard = np.array([o.shard for o in region.outages], dtype=np.int64)
    o_t0 = np.array([o.start_s for o in region.outages], dtype=np.float64)
    o_t1 = np.array([o.end_s for o in region.outages], dtype=np.float64)
    n_buckets = max(math.ceil(seconds / bucket_s), 1)
    out = Result(
        counts={},
        latency=np.zeros(BINS, dtype=np.int64),
        latency_t=np.zeros((n_buckets, BINS), dtype=np.int64),
        lag=np.zeros(BINS, dtype=np.int64),
        events_t=np.zeros((n_buckets, 4), dtype=np.int64),
        servers_t=np.zeros(n_buckets),
        sums=np.zeros(4),
        bucket_s=bucket_s,
    )
    counts = np.zeros(len(COUNTS), dtype=np.int64)
    kernel.run_region(
        seed,
        np.asarray(traffic.times, dtype=np.float64),
        np.asarray(traffic.rates, dtype=np.float64),
        pool_p,
        *_arrays(pool.service),
        *_arrays(pool.latency),
        store_p,
        *_arrays(shards.service if shards else None),
        *_arrays(shards.round_trip if shards else None),
        o_shard, o_t0, o_t1,
        np.array([sink.servers if sink else 0.0]),
        *_arrays(sink.service if sink else None),
        *_arrays(sink.round_trip if sink else None),
        np.array([stream.consumers if stream else 0.0]),
        *_arrays(stream.service if stream else None),
        *_arrays(stream.append if stream else None),
        np.array([LO, PER_DECADE, BINS, bucket_s]),
        out.latency, out.latency_t, out.lag, counts, out.sums, out.events_t, out.servers_t,
    )  # fmt: skip
    out.counts.update({k: int(v) for k, v in zip(COUNTS, counts, strict=True)})
    return out


def fifo_waits(arrivals: F64, services: F64, servers: int) -> F64:
    """Each arrival's wait in a first-come first-served pool of ``servers`` (the
    compiled core's pool alone; ``arrivals`` sorted)."""
    return kernel.fifo_waits(
        np.ascontiguousarray(arrivals, dtype=np.float64),
        np.ascontiguousarray(services, dtype=np.float64),
        servers,
    )
