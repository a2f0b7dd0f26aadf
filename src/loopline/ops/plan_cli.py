"""``loopline plan APP``: the command every application registers, built once here.

An application gives a provider (saved results -> :class:`~loopline.ops.plan.Workload`)
and its unit; :func:`plan_command` returns the typer command with the shared options::

    verbs.plan.command("recs")(
        plan_command("recs", "loopline.apps.recs.plan:workload", unit="requests", flag="--rps")
    )

The provider may be named ``"module:function"``: it is imported when the command runs,
so registering the command imports nothing of the application's.

(No ``from __future__ import annotations`` here: typer reads the options' annotations,
built at run time from the application's unit.)
"""

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from loopline.exceptions import ConfigError
from loopline.ops.prices import Prices, load_prices
from loopline.ops.results import RESULTS


@dataclass(frozen=True, kw_only=True)
class PlanInputs:
    """What a provider reads: the saved results' folder, the load, the prices, and the
    stated inputs no benchmark measures."""

    folder: Path
    load: Any  # loopline.ops.plan.Load (imported lazily: the planner imports numpy)
    prices: Prices
    cache_hit_rate: float


Provider = Callable[[PlanInputs], Any]


def run_plan(app: str, provider: Provider | str, inputs: PlanInputs) -> Any:
    """Plan ``app`` (a :class:`~loopline.ops.plan.Plan`); errors become ConfigError."""
    from loopline.ops.plan import plan

    if isinstance(provider, str):
        module, _, name = provider.partition(":")
        work = getattr(importlib.import_module(module), name)(inputs)
    else:
        work = provider(inputs)
    made = plan(work, inputs.load, inputs.prices)
    made.extras.setdefault("app", app)
    return made


def show_plan(made: Any, *, as_json: bool, html: Path | None, title: str) -> None:
    """Print the plan (JSON or tables) and write its HTML report."""
    if html is not None:
        from loopline.ops.plan_report import write_report

        write_report(made, html, title=title)
    record = made.to_dict()
    if as_json:
        typer.echo(json.dumps(record))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    unit = record["load"]["unit"]
    console.print(
        f"[bold]{title}[/]: {record['load']['rate']:g} {unit}/s mean, "
        f"peak {record['load']['peak_rate']:g}/s, p99 <= {record['load']['latency_ms']:g} ms, "
        f"{record['load']['regions']} region(s)"
    )
    roles = Table("role", "cores", "gpus", "instances", "memory GiB", "util.", "sizing", "$/month")
    for name, r in record["roles"].items():
        roles.add_row(
            name, str(r["cores"]), str(r["gpus"]), str(r["instances"]), f"{r['memory_gib']:g}",
            f"{r['utilisation']:.2f}", r["sizing"], f"{r['monthly_cost']:,.2f}",
        )  # fmt: skip
    console.print(roles)
    console.print(
        f"cores {record['cores']}, gpus {record['gpus']}, memory {record['memory_gib']:g} GiB, "
        f"storage {record['storage_gib']:,.1f} GiB, [bold]${record['monthly_cost']:,.2f}[/] a "
        f"month (compute {record['costs']['compute']:,.2f}, storage "
        f"{record['costs']['storage']:,.2f}, network {record['costs']['network']:,.2f})"
    )
    whatifs = Table("what if", "$/month", "saving", "note")
    for w in record["what_ifs"]:
        cost = "-" if w["monthly_cost"] is None else f"{w['monthly_cost']:,.2f}"
        saving = "-" if w["saving"] is None else f"{w['saving_share']:.0%}"
        whatifs.add_row(w["name"], cost, saving, w["note"])
    console.print(whatifs)
    for key, value in record.get("break_even", {}).items():
        console.print(
            f"break-even {key}: {json.dumps(value) if isinstance(value, dict) else value}"
        )
    for s in record["sources"]:
        console.print(f"measured: {s['benchmark']} {s['date']} on {s['machine'].get('cpu', '?')}")
    console.print(f"prices: {record['prices']['date']}, {record['prices']['source']}")


def inputs_from_options(
    *,
    rate: float,
    unit: str,
    peak: float,
    latency_ms: float,
    retention_days: float,
    regions: int,
    peak_hours: float,
    prices: Path | None,
    results: Path | None,
    cache_hit_rate: float,
    flag: str = "--rps",
) -> PlanInputs:
    """The shared options, checked (a bad one: typer.BadParameter naming it)."""
    from loopline.ops.plan import Load

    if rate <= 0:
        raise typer.BadParameter(f"{flag} must be > 0. Got {rate}.")
    if not 0 <= cache_hit_rate < 1:
        raise typer.BadParameter(f"--cache-hit-rate must be in [0, 1). Got {cache_hit_rate}.")
    try:
        load = Load(
            rate=rate, peak=peak, latency_ms=latency_ms, retention_days=retention_days,
            regions=regions, peak_hours=peak_hours, unit=unit,
        )  # fmt: skip
        table = load_prices(prices)
    except ConfigError as e:
        raise typer.BadParameter(str(e)) from e
    folder = RESULTS if results is None else results
    return PlanInputs(folder=folder, load=load, prices=table, cache_hit_rate=cache_hit_rate)


def plan_command(
    app: str,
    provider: Provider | str,
    *,
    unit: str,
    flag: str = "--rps",
    rate: float = 100.0,
    peak: float = 3.0,
    latency_ms: float = 100.0,
    retention_days: float = 30.0,
    cache_hit_rate: float = 0.0,
    title: str = "",
) -> Callable[..., None]:
    """The ``loopline plan APP`` command for ``provider`` (see the module)."""

    def command(
        rate_: Annotated[
            float, typer.Option(flag, min=0.0, help=f"Mean {unit} a second over a day.")
        ] = rate,
        peak: Annotated[float, typer.Option(help="The peak's multiple of the mean.")] = peak,
        latency_ms: Annotated[
            float, typer.Option(help="The p99 objective of the roles on the path, ms.")
        ] = latency_ms,
        retention_days: Annotated[
            float, typer.Option(help="Days the logs are kept.")
        ] = retention_days,
        regions: Annotated[int, typer.Option(help="Regions, traffic split evenly.")] = 1,
        peak_hours: Annotated[
            float, typer.Option(help="Hours a day at the peak (the autoscaling what-if).")
        ] = 4.0,
        cache_hit_rate: Annotated[
            float, typer.Option(help="Share of requests a cache answers (a stated input).")
        ] = cache_hit_rate,
        prices: Annotated[
            Path | None, typer.Option(help="A TOML file of prices overriding the defaults.")
        ] = None,
        results: Annotated[
            Path | None,
            typer.Option(help="Saved benchmark results (default: benchmarks/results)."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        html: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    ) -> None:
        inputs = inputs_from_options(
            rate=rate_, unit=unit, peak=peak, latency_ms=latency_ms,
            retention_days=retention_days, regions=regions, peak_hours=peak_hours,
            prices=prices, results=results, cache_hit_rate=cache_hit_rate, flag=flag,
        )  # fmt: skip
        try:
            made = run_plan(app, provider, inputs)
        except ConfigError as e:
            raise typer.BadParameter(str(e)) from e
        show_plan(made, as_json=as_json, html=html, title=title or f"loopline plan {app}")

    command.__doc__ = (
        f"Cores, memory, storage and monthly cost ({title or app}) for a load in {unit}/s, "
        "from the benchmarks' saved results (docs/planning.md)."
    )
    return command
