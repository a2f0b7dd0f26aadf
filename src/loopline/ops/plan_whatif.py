"""The what-if rows of a plan: the same workload re-planned with one lever pulled.

* ``spot``: every price for compute times ``1 - spot_discount``, with one more spare
  instance a role and region (spot capacity can be taken back at two minutes' notice).
* ``autoscaling``: compute paid for the day's curve instead of its peak all month: the
  plan at the peak rate for ``peak_hours`` a day and at the base rate (the rate that keeps
  the day's mean) the rest, each with its spares.
* the application's levers (:class:`~loopline.ops.plan.Lever`): caching (a hit rate
  removes that share of the named roles' work), quantization and batching (a measured gain
  in per-core throughput; a measured p99 alone scales with it), each a full re-plan; a
  lever with no measured figure is a row that says "not measured", with no cost.

Storage and network are the same in every row but ``spot`` and ``autoscaling`` alike.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.ops.plan import Lever, Plan, Workload


def _row(name: str, base: Plan, cost: float, cores: int, gpus: int, note: str) -> dict[str, Any]:
    return {
        "name": name,
        "monthly_cost": round(cost, 2),
        "saving": round(base.monthly_cost - cost, 2) + 0.0,
        "saving_share": round(1 - cost / base.monthly_cost, 4) + 0.0 if base.monthly_cost else 0.0,
        "cores": cores,
        "gpus": gpus,
        "measured": True,
        "note": note,
    }


def spot(base: Plan, work: Workload, *, spares: int) -> dict[str, Any]:
    from loopline.ops.plan import plan

    p = base.prices
    d = p.spot_discount
    cheaper = replace(
        p,
        core_hour=p.core_hour * (1 - d),
        memory_gib_hour=p.memory_gib_hour * (1 - d),
        gpu_hour={k: v * (1 - d) for k, v in {**_gpu_prices(base), **p.gpu_hour}.items()},
    )
    again = plan(work, base.load, cheaper, spares=spares + 1, what_ifs=False)
    note = (
        f"compute at {1 - d:.0%} of the on-demand price (the price table's spot discount), "
        f"{spares + 1} spare instances a role and region instead of {spares}"
    )
    return _row("spot", base, again.monthly_cost, again.cores, again.gpus, note)


def _gpu_prices(base: Plan) -> dict[str, float]:
    return {r.gpu: base.prices.gpu(r.gpu) for r in base.roles if r.gpu is not None}


def autoscaling(base: Plan, work: Workload, *, spares: int) -> dict[str, Any]:
    from loopline.ops.plan import plan

    load = base.load
    low = plan(work, load, base.prices, spares=spares, rate=load.base_rate, what_ifs=False)
    hours = load.peak_hours
    compute = (hours * base.compute_cost + (24 - hours) * low.compute_cost) / 24
    cost = compute + base.storage_cost + base.network_cost
    note = (
        f"peak {load.peak_rate:g}/s for {hours:g} h a day, {load.base_rate:.4g}/s the other "
        f"{24 - hours:g} h (the same daily mean); {low.cores} cores off peak"
    )
    return _row("autoscaling", base, cost, low.cores, low.gpus, note)


def lever(base: Plan, work: Workload, pulled: Lever, *, spares: int) -> dict[str, Any]:
    from loopline.ops.plan import plan

    if pulled.throughput is None and pulled.share is None:
        return {
            "name": pulled.name,
            "monthly_cost": None,
            "saving": None,
            "saving_share": None,
            "cores": None,
            "gpus": None,
            "measured": False,
            "note": pulled.note or "not measured",
        }
    gain = pulled.throughput or 1.0
    roles = [
        replace(
            r,
            per_core=r.per_core * gain,
            share=r.share * (1.0 if pulled.share is None else pulled.share),
            service_p99_ms=None if r.service_p99_ms is None else r.service_p99_ms / gain,
        )
        if r.name in pulled.roles
        else r
        for r in work.roles
    ]
    again = plan(replace(work, roles=roles), base.load, base.prices, spares=spares, what_ifs=False)
    missed = [r.name for r in again.roles if not r.meets_objective]
    note = pulled.note + (f"; misses the p99 objective: {', '.join(missed)}" if missed else "")
    row = _row(pulled.name, base, again.monthly_cost, again.cores, again.gpus, note)
    row["measured"] = pulled.measured
    return row


def what_if_rows(base: Plan, work: Workload, *, spares: int) -> list[dict[str, Any]]:
    """Every what-if row of ``base`` (see the module)."""
    rows = [spot(base, work, spares=spares), autoscaling(base, work, spares=spares)]
    return rows + [lever(base, work, w, spares=spares) for w in work.levers]
