"""Sizing one role: the fewest servers whose p99 response time meets the objective
(M/M/c, see :mod:`loopline.ops.plan`), or enough for its throughput."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopline.capacity import erlang_c

if TYPE_CHECKING:
    from loopline.ops.plan import Load, Role
    from loopline.ops.prices import Prices

P99_TAIL = 0.01


def p_response_over(t: float, rate: float, service_s: float, servers: int) -> float:
    """P(wait + service > ``t``) in M/M/c (see the module)."""
    mu = 1.0 / service_s
    c_wait = erlang_c(servers, rate * service_s)
    theta = servers * mu - rate
    if math.isclose(theta, mu, rel_tol=1e-9):
        tail = (1 + mu * t) * math.exp(-mu * t)
    else:
        tail = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
    return (1 - c_wait) * math.exp(-mu * t) + c_wait * tail


def p_wait_over(t: float, rate: float, service_s: float, servers: int) -> float:
    """P(wait > ``t``) in M/M/c: ``C e^(-(c/s - rate) t)``."""
    c_wait = erlang_c(servers, rate * service_s)
    return c_wait * math.exp(-(servers / service_s - rate) * t)


def servers_for_p99(
    rate: float, service_s: float, objective_s: float, service_p99_s: float | None = None
) -> int | None:
    """The fewest M/M/c servers whose p99 response time meets ``objective_s``; ``None``
    when one idle server already misses it. With ``service_p99_s`` (measured), the wait's
    tail at ``objective_s - service_p99_s`` instead (see :mod:`loopline.ops.plan`)."""
    alone = service_s * math.log(1 / P99_TAIL) if service_p99_s is None else service_p99_s
    if alone > objective_s:
        return None
    c = max(1, math.floor(rate * service_s) + 1)
    while True:
        if service_p99_s is None:
            over = p_response_over(objective_s, rate, service_s, c)
        else:
            over = p_wait_over(objective_s - service_p99_s, rate, service_s, c)
        if over <= P99_TAIL:
            return c
        c += 1


@dataclass(frozen=True, kw_only=True)
class RolePlan:
    """One role, sized (per-region figures times the regions)."""

    name: str
    cores: int
    instances: int
    memory_gib: float
    monthly_cost: float
    peak_rate_per_region: float
    per_core: float
    utilisation: float
    sizing: str
    meets_objective: bool
    gpu: str | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "cores": self.cores if self.gpu is None else 0,
            "gpus": self.cores if self.gpu is not None else 0,
            "gpu": self.gpu,
            "instances": self.instances,
            "memory_gib": round(self.memory_gib, 3),
            "monthly_cost": round(self.monthly_cost, 2),
            "peak_rate_per_region": round(self.peak_rate_per_region, 3),
            "per_core": self.per_core,
            "utilisation": round(self.utilisation, 3),
            "sizing": self.sizing,
            "meets_objective": self.meets_objective,
            "source": self.source,
        }


def size_role(role: Role, load: Load, prices: Prices, *, rate: float, spares: int) -> RolePlan:
    """Size ``role`` for ``rate`` (the application's unit a second, all regions)."""
    lam = rate * role.share / load.regions
    service = 1.0 / role.per_core
    servers: int | None = None
    if role.on_path and lam > 0:
        q = None if role.service_p99_ms is None else role.service_p99_ms / 1000
        servers = servers_for_p99(lam, service, load.latency_ms / 1000, q)
    sizing = "p99" if servers is not None else "throughput"
    if servers is None:
        servers = math.ceil(lam / (role.per_core * role.max_utilisation)) if lam > 0 else 0
    per_region = math.ceil(servers / role.cores_per_instance) + spares
    instances = per_region * load.regions
    cores = instances * role.cores_per_instance
    if role.gpu is not None:
        hourly = role.cores_per_instance * prices.gpu(role.gpu)
    else:
        hourly = role.cores_per_instance * prices.core_hour
    hourly += role.memory_gib * prices.memory_gib_hour
    busy = per_region * role.cores_per_instance
    return RolePlan(
        name=role.name,
        cores=cores,
        instances=instances,
        memory_gib=instances * role.memory_gib,
        monthly_cost=instances * hourly * prices.hours_month,
        peak_rate_per_region=lam,
        per_core=role.per_core,
        utilisation=lam * service / busy if busy else 0.0,
        sizing=sizing,
        meets_objective=not role.on_path or sizing == "p99",
        gpu=role.gpu,
        source=role.source,
    )
