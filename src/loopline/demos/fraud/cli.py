"""The fraud demos' commands, registered into the ``loopline`` verbs (entry point
``loopline.applications``): ``demo fraud`` (``make demo``), ``demo events`` and
``scenario drift``."""

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


def register(verbs: Verbs) -> None:
    verbs.demo.command("fraud")(demo_fraud)
    verbs.demo.command("events")(demo_events)
    verbs.scenario.command("drift")(scenario_drift)
