"""The fraud demos' commands, registered into the ``loopline`` verbs (entry point
``loopline.applications``): ``demo fraud`` (``make demo``), ``demo events``,
``scenario drift`` and ``simulate capacity``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopline.cli import Verbs
from loopline.exceptions import ConfigError


def demo_events(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo's files (recreated).")] = Path(
        ".loopline/demo-events"
    ),
    transactions: Annotated[int, typer.Option(min=1000, help="How many to produce.")] = 200_000,
) -> None:
    """Produce a transaction stream and consume it with a consumer group."""
    from loopline.demos.fraud.ingest import run_ingest_demo

    summary = run_ingest_demo(workdir, transactions=transactions)
    raise typer.Exit(0 if summary.ok else 1)


def demo_fraud(
    as_json: Annotated[
        bool, typer.Option("--json", help="The summary as one JSON object.")
    ] = False,
    customers: Annotated[int, typer.Option(min=500, help="Simulated customers.")] = 1500,
    report: Annotated[Path, typer.Option(help="The HTML report.")] = Path(
        ".loopline/demo-fraud.html"
    ),
    profile: Annotated[
        str, typer.Option(help="embedded (no server), or scale (after `loopline up`).")
    ] = "embedded",
    settings: Annotated[Path, typer.Option(help="The scale profile's settings file.")] = Path(
        ".loopline/scale/settings.toml"
    ),
    hours: Annotated[
        int, typer.Option(min=2, help="Scale profile: simulated hours replayed over HTTP.")
    ] = 48,
) -> None:
    """The main job end to end on embedded defaults: simulate, ingest, features, train,
    serve (stream and HTTP), a new fraud pattern, drift, retrain, shadow, promote. With
    ``--profile scale``: the same system on Kafka, Redis, PostgreSQL and MLflow, several
    feature workers and scorers."""
    import json

    if profile == "scale":
        from loopline.demos.fraud import scale

        summary = scale.run(settings, customers=customers, stream_hours=hours, progress=not as_json)
        typer.echo(json.dumps(summary) if as_json else scale.show(summary))
        if not scale.ok(summary):
            typer.echo("error: a check of the scale demo failed (see the summary).", err=True)
            raise typer.Exit(1)
        return
    if profile != "embedded":
        raise ConfigError(f"--profile {profile!r}: choose embedded or scale.")

    from loopline.demos.fraud.demo import run, show

    summary = run(customers=customers, report=report, progress=not as_json)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in summary.items() if k != "history"}))
    else:
        show(summary)
    if not summary["promoted"]:
        typer.echo("error: the new pattern's challenger was not promoted.", err=True)
        raise typer.Exit(1)


def scenario_drift(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    customers: Annotated[int, typer.Option(min=200, help="Simulated customers.")] = 2000,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 0,
    share: Annotated[
        float, typer.Option(min=0.0, help="The new scenario's volume per genuine transaction.")
    ] = 0.3,
    report: Annotated[Path, typer.Option(help="The HTML report.")] = Path(
        ".loopline/scenario-drift.html"
    ),
) -> None:
    """A new fraud pattern starts mid-stream: drift detected, a challenger trained,
    shadowed, gated, canaried and promoted without a human; and a control stream without
    the change, whose every alert is a false alarm (simulated, accelerated time)."""
    import json

    from loopline.demos.fraud.scenario import ScenarioOptions, run
    from loopline.demos.fraud.scenario_report import show

    options = ScenarioOptions(customers=customers, seed=seed, share=share, progress=not as_json)
    result = run(options, report=report)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        show(result)


def simulate_capacity(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    samples: Annotated[
        Path, typer.Option(help="Service-time samples written by `loopline bench scale`.")
    ] = Path(".loopline/scale-samples.json"),
    tps: Annotated[float, typer.Option(min=1.0, help="Steady transactions per second.")] = 100_000,
    regions: Annotated[
        int, typer.Option(min=2, help="Regions, each sized to carry a lost one's share.")
    ] = 3,
    seconds: Annotated[
        float, typer.Option(min=10.0, help="Simulated seconds of each steady run.")
    ] = 600,
    fraction: Annotated[
        float,
        typer.Option(
            min=0.001,
            max=1.0,
            help="Simulate this share of every region's traffic "
            "and servers (faster; smaller pools queue more: pessimistic).",
        ),
    ] = 1.0,
    spike_fraction: Annotated[
        float,
        typer.Option(min=0.001, max=1.0, help="The same for the 10x spike (10x the transactions)."),
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 0,
    report: Annotated[Path, typer.Option(help="The HTML report.")] = Path(
        ".loopline/capacity.html"
    ),
) -> None:
    """The 100K TPS plan by discrete-event simulation from measured service times:
    steady, a 10x spike, a lost region, a lost Redis shard; p50/p99, losses,
    availability, cores per role, and the single-node check against `bench scale`."""
    import json
    import time

    from loopline.demos.fraud.capacity import Measured, Plan, fractions, scenarios, summary
    from loopline.demos.fraud.capacity_check import single_node
    from loopline.demos.fraud.capacity_report import show, write

    plan = Plan(
        tps=tps, regions=regions, seconds=seconds, fraction=fraction, spike_fraction=spike_fraction
    )
    measured = Measured.load(samples)
    started = time.perf_counter()
    results = scenarios(plan, measured, seed=seed)
    answers = summary(plan, measured, results)
    check = single_node(measured, seed=seed)
    answers["single_node_prediction_error"] = check["single_node_prediction_error"]
    answers["single_node"] = check
    answers["simulation_wall_s"] = round(time.perf_counter() - started, 1)
    answers["simulated_transactions"] = sum(r.counts["arrived"] for r in results.values())
    write(report, answers, results, fractions(plan))
    if as_json:
        typer.echo(json.dumps(answers))
    else:
        show(answers)
        typer.echo(f"report: {report}")


def register(verbs: Verbs) -> None:
    verbs.demo.command("fraud")(demo_fraud)
    verbs.demo.command("events")(demo_events)
    verbs.scenario.command("drift")(scenario_drift)
    verbs.simulate.command("capacity")(simulate_capacity)
