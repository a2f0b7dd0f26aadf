"""A region's parts as configuration, and :func:`simulate`, which runs the compiled core.

A transaction arrives (Poisson, at the traffic's rate), waits for a server of the
:class:`Pool` (first come, first served; shed when its wait would pass ``max_wait_s``),
reads its state from one of the :class:`Shards` (the one its partition hashes to)
behind the server's circuit breaker, and is written to the :class:`Sink` before it is
answered. Beside the answer, the event is appended to the log and applied by the
:class:`Stream` consumer that owns its partition: how far that lags is the state's
freshness, not part of the answer's latency.

What is not modelled: the network between the caller and the region beyond what the
recorded round trips hold; CPU shared between the roles (each server is a core of its
own); the log's brokers as a queue (an append is a recorded round trip).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError

F64 = npt.NDArray[np.float64]
NONE = np.zeros(0)


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Distribution:
    """Service or round-trip times in seconds: recorded ``samples`` drawn at random
    (with replacement), or, without samples, exponential with ``mean`` (0: none)."""

    samples: F64 = field(default_factory=lambda: NONE)
    mean: float = 0.0

    def __post_init__(self) -> None:
        samples = np.ascontiguousarray(self.samples, dtype=np.float64)
        bad = len(samples) > 0 and (samples.min() < 0 or not np.isfinite(samples).all())
        if samples.ndim != 1 or bad:
            raise ConfigError("A Distribution's samples must be finite seconds >= 0, one list.")
        if self.mean < 0:
            raise ConfigError(f"A Distribution's mean must be >= 0. Got {self.mean}.")
        object.__setattr__(self, "samples", samples)

    @classmethod
    def of(cls, samples: list[float] | F64) -> Distribution:
        """The recorded ``samples``."""
        return cls(samples=np.asarray(samples, dtype=np.float64))

    @classmethod
    def exponential(cls, mean: float) -> Distribution:
        return cls(mean=mean)

    @classmethod
    def constant(cls, value: float) -> Distribution:
        return cls(samples=np.array([value]))

    def average(self) -> float:
        return float(self.samples.mean()) if len(self.samples) else self.mean

    def scaled(self, factor: float) -> Distribution:
        """Every time ``factor`` times as long."""
        return Distribution(samples=self.samples * factor, mean=self.mean * factor)


@dataclass(frozen=True, kw_only=True, slots=True)
class Pool:
    """Servers (one core each) behind a load balancer. ``service`` is how long a request
    holds a server's core; ``latency``, if given, how long its caller waits once it is
    taken (an asynchronous server awaits its own calls and batches without holding the
    core): drawn independently. With ``scale_period_s`` > 0 an
    autoscaler checks every period the busy share of the servers and asks for
    ``ceil(servers * busy / scale_target)`` (Kubernetes' HPA rule), which come up
    ``scale_delay_s`` later (scheduling, start and warm-up), up to ``max_servers``."""

    servers: int
    service: Distribution
    max_servers: int | None = None
    max_wait_s: float = math.inf
    scale_period_s: float = 0.0
    scale_target: float = 0.7
    scale_delay_s: float = 0.0
    latency: Distribution | None = None

    def __post_init__(self) -> None:
        if self.servers < 1:
            raise ConfigError(f"A Pool's servers must be >= 1. Got {self.servers}.")
        if self.max_servers is not None and self.max_servers < self.servers:
            raise ConfigError(f"A Pool's max_servers ({self.max_servers}) is below its servers.")
        if not 0 < self.scale_target <= 1:
            raise ConfigError(f"A Pool's scale_target must be in (0, 1]. Got {self.scale_target}.")


@dataclass(frozen=True, kw_only=True, slots=True)
class Shards:
    """The state store: ``count`` single-threaded shards (partition ``p`` on shard
    ``p % count``). Each server guards its reads with a circuit breaker: a read slower
    than ``deadline_s`` (or to a shard that is down) fails and is answered without the
    state (a fallback, counted, not lost); ``failures_to_open`` in a row open it for
    ``reset_after_s``, during which the server answers every request without reading."""

    count: int
    service: Distribution
    round_trip: Distribution
    deadline_s: float = 0.02
    failures_to_open: int = 3
    reset_after_s: float = 2.0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"Shards' count must be >= 1. Got {self.count}.")


@dataclass(frozen=True, kw_only=True, slots=True)
class Sink:
    """Where each answer is written before it is returned (``servers`` cores)."""

    servers: int
    service: Distribution
    round_trip: Distribution


@dataclass(frozen=True, kw_only=True, slots=True)
class Stream:
    """The log's ``partitions`` and the ``consumers`` applying them (consumer ``i``
    owns partitions ``p % consumers == i``): ``append`` is the log's round trip,
    ``service`` a consumer's time per event."""

    partitions: int
    consumers: int
    service: Distribution
    append: Distribution

    def __post_init__(self) -> None:
        if not 1 <= self.consumers <= self.partitions:
            raise ConfigError(
                f"A Stream's consumers must be 1 to partitions ({self.partitions}). "
                f"Got {self.consumers}."
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class Outage:
    """Shard ``shard`` is down from ``start_s`` to ``end_s``."""

    shard: int
    start_s: float
    end_s: float


@dataclass(frozen=True, kw_only=True, slots=True)
class Region:
    """One region's parts. ``down_at_s``: the region is lost then (what it holds in
    flight is lost; what arrives later is lost until the caller's traffic moves)."""

    pool: Pool
    shards: Shards | None = None
    sink: Sink | None = None
    stream: Stream | None = None
    outages: tuple[Outage, ...] = ()
    down_at_s: float = math.inf
    partitions: int = 1

    def __post_init__(self) -> None:
        if self.stream is not None and self.stream.partitions != self.partitions:
            raise ConfigError("A Region's stream must have the region's partitions.")


@dataclass(frozen=True, kw_only=True, slots=True)
class Traffic:
    """Poisson arrivals at ``rates[i]`` per second from ``times[i]`` seconds on."""

    times: tuple[float, ...]
    rates: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.times) != len(self.rates) or not self.times or self.times[0] != 0:
            raise ConfigError("Traffic needs as many times as rates, the first time 0.")
        if any(b <= a for a, b in zip(self.times, self.times[1:], strict=False)):
            raise ConfigError(f"Traffic's times must increase. Got {self.times}.")

    @classmethod
    def steady(cls, rate: float) -> Traffic:
        return cls(times=(0.0,), rates=(rate,))

    def scaled(self, factor: float) -> Traffic:
        return Traffic(times=self.times, rates=tuple(r * factor for r in self.rates))
