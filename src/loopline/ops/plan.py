"""Capacity and cost plans from measured per-core figures.

An application describes its workload (:class:`Workload`): the roles that do the work
(each with a per-core throughput a benchmark measured, read from its saved result), the
storage it keeps, the bytes it sends, and the levers it can pull. :func:`plan` sizes it for
a :class:`Load` and costs it at :class:`~loopline.ops.prices.Prices`.

Sizing a role on the request path (``on_path``) for a p99 objective: the role's peak
rate per region ``lam`` (requests/s x its ``share``) is served by ``c`` cores, each an M/M/c
server with mean service time ``s = 1 / per_core`` (the benchmark's saturation throughput on
one core). With ``a = lam * s`` (offered load, < c), ``C = ErlangC(c, a)`` the probability a
request waits (:func:`loopline.capacity.erlang_c`), and ``theta = c / s - lam`` the
rate of the wait's exponential tail, the response time ``T = W + S`` has

    P(T > t) = (1 - C) e^(-t/s) + C (theta e^(-t/s) - (1/s) e^(-theta t)) / (theta - 1/s)

(``C (1 + t/s) e^(-t/s)`` where ``theta = 1/s``). The role gets the smallest ``c`` with
``P(T > objective) <= 0.01``, found by counting up from ``floor(a) + 1``. Exponential
service times are an assumption (a measured mean, a worst-case shape for a single-mode
service). Where a benchmark measured the p99 of one request alone, ``q``
(``Role.service_p99_ms``), the role instead gets the smallest ``c`` with
``C e^(-theta (objective - q)) <= 0.01``: the wait's p99 plus the service's p99 within the
objective (a sum of quantiles, so on the safe side). If even an idle server misses the
objective (``s ln 100`` or ``q`` above it) the role is sized by throughput instead and
marked ``meets_objective: false``. A role off the request
path (workers, databases, batch engines) gets ``ceil(lam / (per_core x max_utilisation))``
cores. Cores are packed into instances of ``cores_per_instance``; each region adds
``spares`` instances (N+1 by default). Traffic is split evenly over the regions.

Storage: ``bytes_per_record x records_per_request x mean rate x retention`` (plus a fixed
size), one copy per region when replicated. Network: responses to the internet
(``egress_bytes_per_request``) and the replicated writes between regions.
Monthly cost: instances x (cores x core-hour + memory x GiB-hour) x hours a month (GPU
roles: GPUs x GPU-hour), block or object storage per GiB-month, transfer per GiB.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from loopline.exceptions import ConfigError
from loopline.ops.plan_sizing import RolePlan, size_role
from loopline.ops.prices import Prices
from loopline.ops.results import Saved

GIB = 1024**3
DAY_S = 86_400.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Load:
    """The load to plan for. ``rate``: the mean over a day, in the application's unit a
    second; ``peak``: the peak's multiple of it, held ``peak_hours`` a day."""

    rate: float
    peak: float = 3.0
    latency_ms: float = 100.0
    retention_days: float = 30.0
    regions: int = 1
    peak_hours: float = 4.0
    unit: str = "requests"

    def __post_init__(self) -> None:
        checks = {
            "rate": self.rate > 0,
            "peak": self.peak >= 1,
            "latency_ms": self.latency_ms > 0,
            "retention_days": self.retention_days >= 0,
            "regions": self.regions >= 1,
            "peak_hours": 0 < self.peak_hours <= 24,
        }
        for name, ok in checks.items():
            if not ok:
                value = getattr(self, name)
                raise ConfigError(
                    f"Load {name!r} (--{name.replace('_', '-')}) is out of range (rate > 0, "
                    "peak >= 1, latency_ms > 0, retention_days >= 0, regions >= 1, "
                    f"0 < peak_hours <= 24). Got {value}."
                )
        if self.peak * self.peak_hours > 24:
            # the peak hours alone would carry more than the day's mean: no such day
            raise ConfigError(
                f"--peak {self.peak:g} held --peak-hours {self.peak_hours:g} a day is more "
                f"than a day at the mean rate ({self.peak * self.peak_hours:g} > 24 "
                "rate-hours): lower one of them, or raise the mean rate."
            )

    @property
    def peak_rate(self) -> float:
        return self.rate * self.peak

    @property
    def base_rate(self) -> float:
        """The rate outside the peak hours that keeps the day's mean at ``rate``."""
        rest = 24 - self.peak_hours
        if rest <= 0:
            return self.peak_rate
        return max(0.0, (24 * self.rate - self.peak_hours * self.peak_rate) / rest)


@dataclass(frozen=True, kw_only=True, slots=True)
class Role:
    """A kind of process the workload runs, with its measured per-core figure.

    Attributes:
        per_core: Units of work one core (one GPU where ``gpu``) completes a second, at
            saturation, as measured.
        share: Units of work per request (1: every request; 0.6: six requests in ten).
        on_path: On the request path: sized for the latency objective by queueing.
        memory_gib: Memory per instance.
        cores_per_instance: Cores (or GPUs) per instance.
        max_utilisation: The busiest a role off the path may run.
        gpu: A GPU name (``loopline.llm.plan.GPUS``): priced per GPU-hour, no core cost.
        service_p99_ms: A measured p99 of one request alone (no queue), where a benchmark
            measures it; the sizing then uses it in place of the exponential law's.
        source: Where ``per_core`` came from (benchmark and key, or "computed: ...").
    """

    name: str
    per_core: float
    share: float = 1.0
    on_path: bool = True
    memory_gib: float = 1.0
    cores_per_instance: int = 1
    max_utilisation: float = 0.7
    gpu: str | None = None
    service_p99_ms: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.per_core <= 0 or self.share < 0 or self.memory_gib < 0:
            raise ConfigError(
                f"Role {self.name!r}: per_core must be > 0, share and memory_gib >= 0. "
                f"Got per_core={self.per_core}, share={self.share}."
            )
        if self.cores_per_instance < 1 or not 0 < self.max_utilisation <= 1:
            raise ConfigError(
                f"Role {self.name!r}: cores_per_instance >= 1, max_utilisation in (0, 1]."
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class Storage:
    """Data a workload keeps: ``bytes_per_record x records_per_request`` a request for
    the retention period (``retained``), plus ``fixed_gib``."""

    name: str
    bytes_per_record: float = 0.0
    records_per_request: float = 1.0
    retained: bool = True
    fixed_gib: float = 0.0
    kind: Literal["block", "object"] = "block"
    replicated: bool = True
    source: str = ""

    @classmethod
    def artifacts(cls, gib: float) -> Storage:
        """Model bundles and reports: a stated size in object storage, kept once."""
        return cls(
            name="artifacts", retained=False, fixed_gib=gib, kind="object", replicated=False,
            source="stated",
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class Lever:
    """A what-if: ``throughput`` multiplies the named roles' per-core figure, ``share``
    their work per request; both ``None``: not measured for this application."""

    name: str
    roles: tuple[str, ...] = ()
    throughput: float | None = None
    share: float | None = None
    note: str = ""
    measured: bool = True

    @classmethod
    def stated_caching(cls, hit_rate: float, roles: tuple[str, ...]) -> Lever:
        """Caching at a stated hit rate, where no benchmark measures one: the named roles
        see ``1 - hit_rate`` of the requests; the lookup's own cost is left out."""
        if hit_rate <= 0:
            return cls(
                name="caching",
                note="not measured: no benchmark measures a hit rate here; state one with "
                "--cache-hit-rate",
            )
        return cls(
            name="caching",
            roles=roles,
            share=1 - hit_rate,
            measured=False,
            note=f"a stated hit rate of {hit_rate:g} (--cache-hit-rate), not measured; "
            "the lookup's own cost left out",
        )


@dataclass(frozen=True, kw_only=True)
class Workload:
    """What an application's provider gives the planner."""

    roles: list[Role]
    storage: list[Storage] = field(default_factory=list)
    egress_bytes_per_request: float = 0.0
    levers: list[Lever] = field(default_factory=list)
    sources: list[Saved] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


def storage_gib(item: Storage, load: Load) -> float:
    """GiB ``item`` holds, over all regions."""
    kept = item.fixed_gib
    if item.retained:
        records = item.records_per_request * load.rate * DAY_S * load.retention_days
        kept += item.bytes_per_record * records / GIB
    return kept * (load.regions if item.replicated else 1)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A sized and costed workload (see :func:`plan`)."""

    load: Load
    roles: list[RolePlan]
    storage: dict[str, float]
    storage_cost: float
    egress_gib_month: float
    inter_region_gib_month: float
    network_cost: float
    prices: Prices
    what_ifs: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def cores(self) -> int:
        return sum(r.cores for r in self.roles if r.gpu is None)

    @property
    def gpus(self) -> int:
        return sum(r.cores for r in self.roles if r.gpu is not None)

    @property
    def memory_gib(self) -> float:
        return sum(r.memory_gib for r in self.roles)

    @property
    def storage_gib(self) -> float:
        return sum(self.storage.values())

    @property
    def compute_cost(self) -> float:
        return sum(r.monthly_cost for r in self.roles)

    @property
    def monthly_cost(self) -> float:
        return self.compute_cost + self.storage_cost + self.network_cost

    def to_dict(self) -> dict[str, Any]:
        """One JSON-able record: totals, roles, storage, network, what-ifs, sources."""
        return {
            "cores": self.cores,
            "gpus": self.gpus,
            "memory_gib": round(self.memory_gib, 3),
            "storage_gib": round(self.storage_gib, 3),
            "monthly_cost": round(self.monthly_cost, 2),
            "costs": {
                "compute": round(self.compute_cost, 2),
                "storage": round(self.storage_cost, 2),
                "network": round(self.network_cost, 2),
            },
            "load": {
                "unit": self.load.unit,
                "rate": self.load.rate,
                "peak": self.load.peak,
                "peak_rate": self.load.peak_rate,
                "latency_ms": self.load.latency_ms,
                "retention_days": self.load.retention_days,
                "regions": self.load.regions,
                "peak_hours": self.load.peak_hours,
            },
            "roles": {r.name: r.to_dict() for r in self.roles},
            "storage": {k: round(v, 3) for k, v in self.storage.items()},
            "network": {
                "egress_gib_month": round(self.egress_gib_month, 3),
                "inter_region_gib_month": round(self.inter_region_gib_month, 3),
            },
            "what_ifs": self.what_ifs,
            "sources": self.sources,
            "prices": self.prices.to_dict(),
            "notes": self.notes,
            **self.extras,
        }


def _network(work: Workload, load: Load, prices: Prices) -> tuple[float, float, float]:
    month_s = prices.hours_month * 3600
    egress = work.egress_bytes_per_request * load.rate * month_s / GIB
    written = sum(
        s.bytes_per_record * s.records_per_request
        for s in work.storage
        if s.replicated and s.retained
    )
    between = written * load.rate * month_s * (load.regions - 1) / GIB
    return egress, between, egress * prices.egress_gib + between * prices.inter_region_gib


def plan(
    work: Workload,
    load: Load,
    prices: Prices,
    *,
    spares: int = 1,
    rate: float | None = None,
    what_ifs: bool = True,
) -> Plan:
    """Size ``work`` for ``load``'s peak (or ``rate``) and cost it at ``prices``, with
    the what-if rows (:mod:`loopline.ops.plan_whatif`) unless ``what_ifs`` is false."""
    if not work.roles:
        raise ConfigError("A workload needs at least one role.")
    at = load.peak_rate if rate is None else rate
    roles = [size_role(r, load, prices, rate=at, spares=spares) for r in work.roles]
    storage = {s.name: storage_gib(s, load) for s in work.storage}
    price_of = {"block": prices.storage_gib_month, "object": prices.object_gib_month}
    storage_cost = sum(storage[s.name] * price_of[s.kind] for s in work.storage)
    egress, between, network_cost = _network(work, load, prices)
    made = Plan(
        load=load,
        roles=roles,
        storage=storage,
        storage_cost=storage_cost,
        egress_gib_month=egress,
        inter_region_gib_month=between,
        network_cost=network_cost,
        prices=prices,
        sources=[s.source() for s in work.sources],
        notes=list(work.notes),
        extras=dict(work.extras),
    )
    if not what_ifs:
        return made
    from loopline.ops.plan_whatif import what_if_rows

    return replace(made, what_ifs=what_if_rows(made, work, spares=spares))
