"""Capacity engine benchmark: the compiled queueing core against simpy.

    loopline bench capacity [--arrivals N] [--json]

The same first-come first-served pool (3 servers, Poisson arrivals, lognormal service
times at ~80 % load) run by ``loopline.capacity.fifo_waits`` (numba) and by simpy
(a ``Resource`` and a process per arrival), from the same arrival and service arrays:
the waits must agree to 1e-9 s. Then the whole region kernel (pool, shards, sink,
stream consumers) per simulated transaction.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import simpy

from loopline.capacity import (
    Distribution,
    Pool,
    Region,
    Shards,
    Sink,
    Stream,
    Traffic,
    fifo_waits,
    simulate,
)


def with_simpy(arrivals: np.ndarray, services: np.ndarray, servers: int) -> np.ndarray:
    env = simpy.Environment()
    desk = simpy.Resource(env, capacity=servers)
    waits = np.zeros(len(arrivals))

    def customer(i: int) -> Any:
        yield env.timeout(arrivals[i])
        with desk.request() as turn:
            asked = env.now
            yield turn
            waits[i] = env.now - asked
            yield env.timeout(services[i])

    for i in range(len(arrivals)):
        env.process(customer(i))
    env.run()
    return waits


def region_ns_per_tx(rate: float, seconds: float) -> float:
    region = Region(
        pool=Pool(servers=100, service=Distribution.exponential(0.001), max_wait_s=0.1),
        shards=Shards(count=3, service=Distribution.constant(1e-5),
                      round_trip=Distribution.exponential(3e-4)),
        sink=Sink(servers=4, service=Distribution.constant(2e-5),
                  round_trip=Distribution.exponential(3e-4)),
        stream=Stream(partitions=48, consumers=16, service=Distribution.exponential(1e-4),
                      append=Distribution.exponential(1e-4)),
        partitions=48,
    )  # fmt: skip
    simulate(region, Traffic.steady(rate), seconds=1.0)  # compiled
    t = time.perf_counter()
    r = simulate(region, Traffic.steady(rate), seconds=seconds)
    return (time.perf_counter() - t) / r.counts["arrived"] * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arrivals", type=int, default=200_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    arrivals = np.cumsum(rng.exponential(1.0, args.arrivals))
    services = rng.lognormal(0.5, 0.8, args.arrivals)  # mean ~2.3: 3 servers at ~77 %
    fifo_waits(arrivals[:10], services[:10], 3)  # compiled
    t = time.perf_counter()
    ours = fifo_waits(arrivals, services, 3)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    theirs = with_simpy(arrivals, services, 3)
    simpy_s = time.perf_counter() - t
    result = {
        "benchmark": "capacity",
        "arrivals": args.arrivals,
        "max_wait_difference_s": float(np.abs(ours - theirs).max()),
        "mean_wait": float(ours.mean()),
        "engine_ns_per_arrival": round(ours_s / args.arrivals * 1e9, 1),
        "simpy_ns_per_arrival": round(simpy_s / args.arrivals * 1e9, 1),
        "speedup_vs_simpy": round(simpy_s / ours_s, 1),
        "region_kernel_ns_per_tx": round(region_ns_per_tx(50_000.0, 100.0), 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:28} {v}")


if __name__ == "__main__":
    main()
