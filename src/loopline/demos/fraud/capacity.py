"""``loopline simulate capacity``: the 100K TPS plan of docs/scale-out.md, checked by
discrete-event simulation (:mod:`loopline.capacity`) driven by what ``loopline bench
scale`` measured on this machine.

It is a simulation, not a measurement: its inputs are per-core service times recorded
on real servers (each scorer's gaps between answers at saturation, scaled to its CPU
share, for how long a request holds a core; a scorer's latency per request asked one
at a time, for how long its caller waits; a feature worker's per-batch time per event;
idle round trips to Redis, PostgreSQL and Kafka; each role's CPU per transaction), its
topology the production one
(regions, each with a scorer pool behind a load balancer, Redis shards behind each
scorer's breaker, PostgreSQL, Kafka partitions and their feature workers), and its
answers hold only as far as :class:`Plan`'s assumptions do.

The plan sizes each region to carry the traffic of a lost one (``regions - 1`` carry
all of it at ``target_util``); Redis, PostgreSQL and the workers are provisioned for
the spike's peak ahead of time (they do not autoscale); the scorers autoscale.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from loopline.capacity import (
    Distribution,
    Outage,
    Pool,
    Region,
    Result,
    Shards,
    Sink,
    Stream,
    Traffic,
    simulate,
)
from loopline.exceptions import ConfigError

YEAR_S = 365.25 * 86400


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """The production design and the assumptions the simulation rests on."""

    tps: float = 100_000.0
    regions: int = 3
    partitions: int = 48  # per region (docs/scale-out.md)
    redis_primaries: int = 3  # per region, at least
    target_util: float = 0.7  # a core at 70 %
    seconds: float = 600.0  # steady, region-loss and shard-loss runs
    spike_factor: float = 10.0
    spike_s: float = 600.0
    spike_before_s: float = 120.0
    spike_after_s: float = 180.0
    scale_period_s: float = 15.0  # the autoscaler's check (HPA's default)
    scale_delay_s: float = 30.0  # a new scorer pod scheduled and started
    warm_up_s: float = 5.0  # a scorer loads and warms its model (docs/scale-out.md)
    max_wait_s: float = 0.1  # a scorer's bounded queue: past it, 503 + Retry-After
    incident_at_s: float = 120.0
    failover_s: float = 10.0  # a lost region's traffic moves (health checks, LB/DNS)
    incident_window_s: float = 60.0  # region and shard loss: p50/p99 over this after it
    shard_failover_s: float = 20.0  # a replica promoted (cluster-node-timeout 15 s + vote)
    region_losses_per_year: float = 1.0
    shard_losses_per_year: float = 12.0
    spikes_per_year: float = 12.0
    fraction: float = 1.0  # simulate this share of every region's traffic and servers
    spike_fraction: float = 0.1  # the same for the spike (10x the transactions)

    def __post_init__(self) -> None:
        if self.regions < 2:
            raise ConfigError(
                f"A Plan needs regions >= 2 to survive losing one. Got {self.regions}."
            )
        for name in ("fraction", "spike_fraction"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"A Plan's {name} must be in (0, 1]. Got {getattr(self, name)}.")


@dataclass(frozen=True, kw_only=True, slots=True)
class Measured:
    """Per-core service times from ``loopline bench scale``'s samples file."""

    scorer: Distribution  # CPU per request on one core
    scorer_latency: Distribution | None  # a request's own time, asked one at a time
    worker: Distribution  # per event
    redis_rtt: Distribution
    postgres_rtt: Distribution
    kafka_append: Distribution
    cpu_s_per_tx: dict[str, float]  # per role, at N = 1
    bench: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Measured:
        if not path.exists():
            raise ConfigError(f"No samples file at {path}: run `loopline bench scale` first.")
        bench = json.loads(path.read_text())
        s, first = bench["samples"], bench["per_n"][0]
        gaps = np.concatenate([np.asarray(g) for g in s[f"scorer_gap_s_n{first['n']}"]])
        per_event = np.repeat(s["worker_event_s"], np.asarray(s["worker_batch_events"], int))
        return cls(
            scorer=Distribution.of(gaps * first["scorer_cpu_share"]),
            scorer_latency=_latency(s, first["n"]),
            worker=Distribution.of(per_event),
            redis_rtt=Distribution.of(s["redis_rtt_s"]),
            postgres_rtt=Distribution.of(s["postgres_insert_s"]),
            kafka_append=Distribution.of(s["kafka_append_s"]),
            cpu_s_per_tx={k: v / 1000 for k, v in first["cpu_ms_per_tx"].items()},
            bench=bench,
        )


def _latency(samples: dict[str, Any], n: int) -> Distribution | None:
    alone = samples.get(f"scorer_latency_s_n{n}")
    return Distribution.of(alone) if alone else None


def cores(plan: Plan, m: Measured) -> dict[str, Any]:
    """Cores per role per region: each region carries ``tps / (regions - 1)`` (a lost
    region's share) at ``target_util``; Redis, PostgreSQL and workers for the spike too."""
    carry = plan.tps / (plan.regions - 1)
    peak = plan.tps * plan.spike_factor / plan.regions
    need = max(carry, peak)

    def at(rate: float, seconds: float, least: int = 1) -> int:
        return max(least, math.ceil(rate * seconds / plan.target_util))

    workers = at(need, m.worker.average())
    return {
        "scorers": at(carry, m.scorer.average()),
        "scorers_max": at(peak, m.scorer.average()),
        "workers": workers,
        "partitions": max(plan.partitions, workers),
        "redis_shards": at(need, m.cpu_s_per_tx.get("redis", 0.0), plan.redis_primaries),
        "postgres": at(need, m.cpu_s_per_tx.get("postgres", 0.0), 2),
        "brokers": at(need, 3 * m.cpu_s_per_tx.get("noida", 0.0)),  # 3 replicas
    }


def _up(count: float) -> int:
    """Servers for a share of a role: rounded up (never fewer than the plan's share)."""
    return max(1, math.ceil(count - 1e-9))


def cpus() -> int:
    """The cores this process may run on (its affinity: a container's or taskset's
    limit, which ``os.cpu_count()`` ignores)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def region(plan: Plan, m: Measured, per: dict[str, Any], f: float, **more: Any) -> Region:
    """One region of the plan, with ``f`` of its servers (and partitions), rounded up."""
    pool = Pool(
        servers=_up(per["scorers"] * f),
        service=m.scorer,
        max_servers=_up(per["scorers_max"] * f),
        max_wait_s=plan.max_wait_s,
        scale_period_s=plan.scale_period_s,
        scale_target=plan.target_util,
        scale_delay_s=plan.scale_delay_s + plan.warm_up_s,
        latency=m.scorer_latency,
    )
    redis_op = Distribution.constant(m.cpu_s_per_tx.get("redis", 0.0))
    pg_op = Distribution.constant(m.cpu_s_per_tx.get("postgres", 0.0))
    # a scorer's measured latency already holds its idle Redis and PostgreSQL round
    # trips: only their queues are added then
    redis_rtt = m.redis_rtt if m.scorer_latency is None else Distribution.constant(0.0)
    pg_rtt = m.postgres_rtt if m.scorer_latency is None else Distribution.constant(0.0)
    shards = _up(per["redis_shards"] * f)
    partitions = max(shards, _up(per["partitions"] * f))
    return Region(
        pool=pool,
        shards=Shards(count=shards, service=redis_op, round_trip=redis_rtt),
        sink=Sink(servers=_up(per["postgres"] * f), service=pg_op,
                  round_trip=pg_rtt),
        stream=Stream(partitions=partitions, service=m.worker, append=m.kafka_append,
                      consumers=min(partitions, _up(per["workers"] * f))),
        partitions=partitions,
        **more,
    )  # fmt: skip


def _run(regions: list[tuple[Region, Traffic]], f: float, seconds: float, seed: int) -> Result:
    """The regions' runs (in threads: the compiled core releases the GIL), as one."""
    with ThreadPoolExecutor(max_workers=min(len(regions), cpus())) as pool:
        runs = [
            pool.submit(simulate, r, t.scaled(f), seconds=seconds, seed=seed + i)
            for i, (r, t) in enumerate(regions)
        ]
        results = [r.result() for r in runs]
    total = results[0]
    for r in results[1:]:
        total = total.plus(r)
    return total


def scenarios(plan: Plan, m: Measured, seed: int = 0) -> dict[str, Result]:
    """(a) steady, (b) spike, (c) a lost region, (d) a lost Redis shard."""
    per, f, n = cores(plan, m), plan.fraction, plan.regions
    base = region(plan, m, per, f)
    share = plan.tps / n
    steady = Traffic.steady(share)
    out = {"steady": _run([(base, steady)] * n, f, plan.seconds, seed)}
    b, s, fs = plan.spike_before_s, plan.spike_s, plan.spike_fraction
    spike = Traffic(times=(0.0, b, b + s), rates=(share, share * plan.spike_factor, share))
    spiked = region(plan, m, per, fs)
    out["spike"] = _run([(spiked, spike)] * n, fs, b + s + plan.spike_after_s, seed)
    # the same spike with the scorers scaled ahead of it (a peak on the calendar)
    ahead = replace(spiked, pool=replace(spiked.pool, servers=spiked.pool.max_servers or 1))
    out["spike_prescaled"] = _run([(ahead, spike)] * n, fs, b + s + plan.spike_after_s, seed)
    t0, moved = plan.incident_at_s, plan.incident_at_s + plan.failover_s
    lost = replace(base, down_at_s=t0)
    gone = Traffic(times=(0.0, moved), rates=(share, 0.0))
    takes = Traffic(times=(0.0, moved), rates=(share, plan.tps / (n - 1)))
    out["region_loss"] = _run([(lost, gone)] + [(base, takes)] * (n - 1), f, plan.seconds, seed)
    shard = replace(base, outages=(Outage(shard=0, start_s=t0, end_s=t0 + plan.shard_failover_s),))
    out["shard_loss"] = _run([(shard, steady)] + [(base, steady)] * (n - 1), f, plan.seconds, seed)
    return out


def fractions(plan: Plan) -> dict[str, float]:
    """The share of each scenario's traffic and servers simulated."""
    return {"steady": plan.fraction, "spike": plan.spike_fraction,
            "spike_prescaled": plan.spike_fraction, "region_loss": plan.fraction,
            "shard_loss": plan.fraction}  # fmt: skip


def availability(plan: Plan, results: dict[str, Result], spike: str = "spike") -> dict[str, float]:
    """Answered share per scenario, and over a year of ``plan``'s incidents (its spikes
    met as ``spike`` met them): each incident loses what its run lost beyond the steady
    run's rate."""
    share = fractions(plan)
    steady = results["steady"]
    base = steady.lost / steady.counts["arrived"]
    per_year = {
        "region_loss": plan.region_losses_per_year,
        "shard_loss": plan.shard_losses_per_year,
        spike: plan.spikes_per_year,
    }
    lost_year = base * plan.tps * YEAR_S
    for name, times in per_year.items():
        r = results[name]
        extra = max(r.lost - base * r.counts["arrived"], 0.0) / share[name]
        lost_year += times * extra
    out = {f"{k}_answered": 1 - r.lost / r.counts["arrived"] for k, r in results.items()}
    return out | {"year": 1 - lost_year / (plan.tps * YEAR_S)}


def _ms(value: float) -> float | None:
    return None if math.isnan(value) else value


def summary(plan: Plan, m: Measured, results: dict[str, Result]) -> dict[str, Any]:
    per, share = cores(plan, m), fractions(plan)
    avail = availability(plan, results)
    region_loss, shard_loss = results["region_loss"], results["shard_loss"]
    # the incidents' latency: what arrived in the window after each, all regions (the
    # whole run's figure dilutes it with the steady minutes around it)
    t0 = plan.incident_at_s
    t1 = min(t0 + plan.incident_window_s, plan.seconds)
    out: dict[str, Any] = {
        "simulated": True,
        "steady_p50_ms": results["steady"].quantile_ms(0.5),
        "steady_p99_ms": results["steady"].quantile_ms(0.99),
        "spike_p50_ms": results["spike"].quantile_ms(0.5),
        "spike_p99_ms": results["spike"].quantile_ms(0.99),
        "spike_prescaled_p99_ms": results["spike_prescaled"].quantile_ms(0.99),
        "incident_window_s": [t0, t1],
        "region_loss_p50_ms": _ms(region_loss.window_quantile_ms(0.5, t0, t1)),
        "region_loss_p99_ms": _ms(region_loss.window_quantile_ms(0.99, t0, t1)),
        "region_loss_p99_ms_whole_run": region_loss.quantile_ms(0.99),
        "shard_loss_p50_ms": _ms(shard_loss.window_quantile_ms(0.5, t0, t1)),
        "shard_loss_p99_ms": _ms(shard_loss.window_quantile_ms(0.99, t0, t1)),
        "shard_loss_p99_ms_whole_run": shard_loss.quantile_ms(0.99),
        "lost_transactions": {k: round(r.lost / share[k]) for k, r in results.items()},
        "rules_only_decisions": {
            k: round(r.counts["fallback"] / share[k]) for k, r in results.items()
        },
        "shed": {k: round(r.counts["shed"] / share[k]) for k, r in results.items()},
        "simulated_share": share,
        "feature_lag_p99_ms": {k: r.quantile_ms(0.99, of="lag") for k, r in results.items()},
        "availability": avail["year"],
        "availability_spikes_prescaled": availability(plan, results, "spike_prescaled")["year"],
        "availability_per_scenario": {k: v for k, v in avail.items() if k != "year"},
        "cores_per_role": {
            "per_region": per,
            "total": {k: v * plan.regions for k, v in per.items() if k != "partitions"},
            # the stateful roles sized for the steady traffic only (a spike then lags
            # the features and slows Redis and PostgreSQL: not simulated)
            "per_region_no_spike_headroom": cores(replace(plan, spike_factor=1.0), m),
        },
        "scorers_up_at_spike_end": int(results["spike"].servers_t.max() / share["spike"]),
        "assumptions": {k: getattr(plan, k) for k in plan.__slots__},
    }
    return out
