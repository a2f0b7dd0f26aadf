"""The simulator's single-node predictions against ``loopline bench scale``'s
measurements on the machine that recorded the samples.

The node is simulated as what the benchmark ran: N scorers (a pool of N servers) whose
service times are the gaps between one scorer's answers at saturation when N was 1.
Every process of the benchmark (scorers, workers, servers, the load generator) shares
the machine's cores; when N scorers at that speed would need more CPU than the cores
hold (each transaction costs the CPU of every role, measured at N = 1), every scorer
runs slower by the ratio (the cores are shared fairly). A request's own time is what
one scorer took per request asked one at a time (N = 1), as slowed. Predicted: ``tx_per_s`` at
saturation, and p50 / p99 in an open loop at the rate the benchmark used (half its
saturation rate). N = 1 is the calibration (its gaps are that run's); larger N are
predictions.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from loopline.capacity import Distribution, Pool, Region, Traffic, simulate
from loopline.demos.fraud.capacity import Measured

SECONDS = 60.0


def single_node(m: Measured, seed: int = 0) -> dict[str, Any]:
    bench = m.bench
    first = bench["per_n"][0]
    gaps = np.concatenate([np.asarray(g) for g in bench["samples"][f"scorer_gap_s_n{first['n']}"]])
    cpu_per_tx = sum(first["cpu_ms_per_tx"].values()) / 1000
    node_cores = float(bench["cores"])
    rows = []
    for measured in bench["per_n"]:
        n = int(measured["n"])
        by_pool, by_cpu = n / float(gaps.mean()), node_cores / cpu_per_tx
        slower = max(1.0, by_pool / by_cpu)
        service = Distribution.of(gaps).scaled(slower)
        latency = m.scorer_latency.scaled(slower) if m.scorer_latency else None
        node = Region(pool=Pool(servers=n, service=service, latency=latency))
        capacity = min(by_pool, by_cpu)
        # saturated: the excess is shed after a second's wait, so what is answered in
        # the run is what the servers can do (plus at most a second's backlog)
        full = simulate(replace(node, pool=replace(node.pool, max_wait_s=1.0)),
                        Traffic.steady(3 * capacity), seconds=SECONDS, seed=seed)  # fmt: skip
        tx_per_s = full.counts["answered"] / SECONDS
        half = simulate(node, Traffic.steady(measured["half_load_rate"]), seconds=SECONDS,
                        seed=seed + 1)  # fmt: skip
        rows.append({
            "n": n,
            "measured_tx_per_s": measured["tx_per_s"],
            "predicted_tx_per_s": round(tx_per_s, 1),
            "tx_per_s_error": round(abs(tx_per_s / measured["tx_per_s"] - 1), 3),
            "cpu_bound": by_cpu < by_pool,
            "measured_p50_ms": measured["p50_ms"],
            "predicted_p50_ms": round(half.quantile_ms(0.5), 2),
            "measured_p99_ms": measured["p99_ms"],
            "predicted_p99_ms": round(half.quantile_ms(0.99), 2),
        })  # fmt: skip
    predicted = [r for r in rows if r["n"] > 1] or rows
    return {
        "per_n": rows,
        "single_node_prediction_error": max(r["tx_per_s_error"] for r in predicted),
        "what": "tx_per_s at saturation, N > 1 (N = 1 calibrates)",
    }
