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

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopline.capacity.queueing import erlang_c, mmc_mean_wait

if TYPE_CHECKING:
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
    from loopline.capacity.run import Result, fifo_waits, simulate

_MODEL = ("Distribution", "Outage", "Pool", "Region", "Shards", "Sink", "Stream", "Traffic")
_RUN = ("Result", "fifo_waits", "simulate")

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


def __getattr__(name: str) -> Any:  # the engine (NumPy, numba) is imported on first use
    if name in _MODEL:
        from loopline.capacity import model

        return getattr(model, name)
    if name in _RUN:
        from loopline.capacity import run

        return getattr(run, name)
    raise AttributeError(f"module 'loopline.capacity' has no attribute {name!r}")
