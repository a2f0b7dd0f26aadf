"""Capacity planning by discrete-event simulation: stages, pools of servers, state
shards, stream consumers, regions, and service times drawn from recorded samples.

The queueing core is compiled (numba, :mod:`loopline.capacity.kernel`), so a run of
tens of millions of arrivals takes seconds::

    pool = Pool(servers=4, service=Distribution.exponential(0.001))
    result = simulate(Region(pool=pool), Traffic.steady(3000.0), seconds=60)
    result.quantile_ms(0.99)

An application describes its topology with these parts and reads the answers; the
engine knows nothing of what the servers do.
"""

from loopline.capacity.model import (
    Distribution,
    Outage,
    Pool,
    Region,
    Shards,
    Sink,
    Stream,
    Traffic,
)
from loopline.capacity.run import Result, erlang_c, fifo_waits, mmc_mean_wait, simulate

__all__ = [
    "Distribution",
    "Outage",
    "Pool",
    "Region",
    "Result",
    "Shards",
    "Sink",
    "Stream",
    "Traffic",
    "erlang_c",
    "fifo_waits",
    "mmc_mean_wait",
    "simulate",
]
