"""The ``loopline`` command: one entry point, a subcommand group per stage and application."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Annotated

import typer

import loopline
from loopline.cli_ml import models_app, serve_app, simulate_app, train_app
from loopline.exceptions import ConfigError

app = typer.Typer(help="loopline: an end-to-end real-time ML system.", no_args_is_help=True)
demo_app = typer.Typer(help="Guided demos on embedded defaults.", no_args_is_help=True)
bench_app = typer.Typer(
    help="Benchmarks (scripts under benchmarks/ in a source checkout).", no_args_is_help=True
)
features_app = typer.Typer(help="Feature engine: definitions, consistency.", no_args_is_help=True)
events_app = typer.Typer(help="Event log: inspect topics and records.", no_args_is_help=True)
scenario_app = typer.Typer(
    help="Scenario checks: the whole loop on a simulated stream.", no_args_is_help=True
)
app.add_typer(events_app, name="events")
app.add_typer(demo_app, name="demo")
app.add_typer(features_app, name="features")
app.add_typer(bench_app, name="bench")
app.add_typer(simulate_app, name="simulate")
app.add_typer(train_app, name="train")
app.add_typer(models_app, name="models")
app.add_typer(serve_app, name="serve")
app.add_typer(scenario_app, name="scenario")
work_app = typer.Typer(help="Stream workers of the scale-out profile.", no_args_is_help=True)
app.add_typer(work_app, name="work")


@work_app.command("fraud")
def work_fraud(
    index: Annotated[int, typer.Option(min=0, help="This worker's number, from 0.")],
    settings: Annotated[
        Path | None, typer.Option(help="Settings file (loopline.settings).")
    ] = None,
) -> None:
    """A feature worker: the fraud features of its partitions of the transactions and
    labels topics, into the shared online store, until stopped."""
    from loopline.apps.fraud.workers import run
    from loopline.settings import load_settings

    run(load_settings(settings), index)


@app.command()
def version() -> None:
    """Print loopline's version."""
    typer.echo(loopline.__version__)


@demo_app.command("events")
def demo_events(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo's files (recreated).")] = Path(
        ".loopline/demo-events"
    ),
    transactions: Annotated[int, typer.Option(min=1000, help="How many to produce.")] = 200_000,
) -> None:
    """Produce a transaction stream and consume it with a consumer group."""
    from loopline.apps.fraud.ingest_demo import run_ingest_demo

    summary = run_ingest_demo(workdir, transactions=transactions)
    raise typer.Exit(0 if summary.ok else 1)


@demo_app.command("fraud")
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
        from loopline.apps.fraud import scale_demo

        summary = scale_demo.run(
            settings, customers=customers, stream_hours=hours, progress=not as_json
        )
        typer.echo(json.dumps(summary) if as_json else scale_demo.show(summary))
        if not scale_demo.ok(summary):
            typer.echo("error: a check of the scale demo failed (see the summary).", err=True)
            raise typer.Exit(1)
        return
    if profile != "embedded":
        raise ConfigError(f"--profile {profile!r}: choose embedded or scale.")

    from loopline.apps.fraud.demo import run, show

    summary = run(customers=customers, report=report, progress=not as_json)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in summary.items() if k != "history"}))
    else:
        show(summary)
    if not summary["promoted"]:
        typer.echo("error: the new pattern's challenger was not promoted.", err=True)
        raise typer.Exit(1)


UrlArg = Annotated[
    str, typer.Argument(help="file:///path/events.db, kafka://host:port or redis://host:port/db")
]


@events_app.command("info")
def events_info(url: UrlArg, topic: str) -> None:
    """Partitions and end offsets of a topic."""
    from loopline.events import TopicPartition, open_log

    log = open_log(url)
    for p in range(log.partitions(topic)):
        typer.echo(f"{topic}[{p}] end offset {log.end_offset(TopicPartition(topic, p)):,}")
    log.close()


@events_app.command("tail")
def events_tail(
    url: UrlArg,
    topic: str,
    partition: Annotated[int, typer.Option(help="The partition to read.")] = 0,
    last: Annotated[int, typer.Option(min=1, help="How many records, newest last.")] = 10,
) -> None:
    """Print the newest records of a partition (offset, time, key, value)."""
    from loopline.events import TopicPartition, open_log

    log = open_log(url)
    tp = TopicPartition(topic, partition)
    for r in log.read(tp, max(0, log.end_offset(tp) - last), max_records=last):
        key = r.key.decode(errors="replace") if r.key is not None else "-"
        typer.echo(f"{r.offset}\t{r.timestamp_ms}\t{key}\t{r.value.decode(errors='replace')}")
    log.close()


@features_app.command("validate")
def features_validate(
    customers: Annotated[int, typer.Option(min=10, help="Simulated customers.")] = 500,
    days: Annotated[int, typer.Option(min=2, help="Simulated days.")] = 45,
    sample: Annotated[int, typer.Option(min=1, help="Transactions compared.")] = 1000,
    seed: Annotated[int, typer.Option(help="Simulation and sampling seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Replay a simulated stream (transactions and late labels) through the online and
    offline engines; print each fraud feature's mismatch rate."""
    import json

    from rich.console import Console
    from rich.table import Table

    from loopline.apps.fraud import data, fraud_feature_set
    from loopline.apps.fraud.simulator import profile, simulate
    from loopline.features.validate import validate

    sim = simulate(
        profile("full", customers=customers, terminals=2 * customers, days=days), seed=seed
    )
    streams = data.histories(sim.transactions, sim.labels)
    columns = {
        name: data.columns(
            t.drop_columns(["_partition", "_offset"]) if name == "transactions" else t
        )
        for name, t in streams.items()
    }
    rates = validate(fraud_feature_set(), columns, sample=sample, seed=seed)
    events = sim.transactions.num_rows
    if as_json:
        typer.echo(json.dumps({"events": events, "sample": sample, "mismatch_rates": rates}))
    else:
        table = Table(title=f"online vs offline, {sample:,} of {events:,} simulated transactions")
        table.add_column("feature")
        table.add_column("mismatch rate", justify="right")
        for name, rate in rates.items():
            table.add_row(name, f"{rate:.2%}")
        Console().print(table)
    raise typer.Exit(0 if not any(rates.values()) else 1)


def _run_benchmark(name: str, args: list[str]) -> None:
    """Run ``benchmarks/<name>.py`` (it ships with the source checkout) with ``args``."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    if not script.exists():
        typer.echo(
            f"Benchmark script {script} not found: benchmarks ship with the source "
            "checkout; run this from a clone installed with `pip install -e`.",
            err=True,
        )
        raise typer.Exit(2)
    sys.argv = [str(script), *args]
    runpy.run_path(str(script), run_name="__main__")


_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@bench_app.command("events", context_settings=_PASS_THROUGH)
def bench_events(ctx: typer.Context) -> None:
    """Event-log throughput and latency: --backend embedded|kafka|redis [--url URL] [--json]."""
    _run_benchmark("events", ctx.args)


@bench_app.command("features", context_settings=_PASS_THROUGH)
def bench_features(ctx: typer.Context) -> None:
    """Feature engine: online updates and reads, point-in-time join vs merge_asof [--json]."""
    _run_benchmark("features", ctx.args)


@bench_app.command("training", context_settings=_PASS_THROUGH)
def bench_training(ctx: typer.Context) -> None:
    """Fraud training: simulator speed, 1M-transaction training time [--quality] [--json]."""
    _run_benchmark("training", ctx.args)


@bench_app.command("soak", context_settings=_PASS_THROUGH)
def bench_soak(ctx: typer.Context) -> None:
    """The fraud service under sustained load: memory growth and errors (benchmarks/soak.py)."""
    _run_benchmark("soak", ctx.args)


@bench_app.command("serving", context_settings=_PASS_THROUGH)
def bench_serving(ctx: typer.Context) -> None:
    """Decision service vs a FastAPI baseline: max rps, p99 at half load [--json]."""
    _run_benchmark("serving", ctx.args)


@scenario_app.command("drift")
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

    from loopline.apps.fraud.scenario import ScenarioOptions, run
    from loopline.apps.fraud.scenario_report import show

    options = ScenarioOptions(customers=customers, seed=seed, share=share, progress=not as_json)
    result = run(options, report=report)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        show(result)


@app.command()
def up(
    profile: Annotated[str, typer.Option(help="Which parts: scale (Kafka, Redis, ...).")],
    root: Annotated[Path, typer.Option("--dir", help="The servers' data (recreated).")] = Path(
        ".loopline/scale"
    ),
    partitions: Annotated[int, typer.Option(min=1, help="Transactions topic partitions.")] = 4,
    processes: Annotated[int, typer.Option(min=1, help="Scorers and feature workers.")] = 2,
) -> None:
    """Start the scale-out profile's servers on 127.0.0.1 (noida-db Kafka broker,
    redis-server, PostgreSQL, MLflow tracking server) and write their settings file."""
    from loopline.servers.profile import PROFILES
    from loopline.servers.profile import up as start

    if profile not in PROFILES:
        raise ConfigError(f"--profile {profile!r}: choose one of {', '.join(PROFILES)}.")
    settings = start(
        root,
        partitions=partitions,
        processes=processes,
        started=lambda r: typer.echo(f"started {r.name:<13} {r.url}  (pid {r.pid}, log {r.log})"),
    )
    typer.echo(f"settings: {settings}\nnext: loopline demo fraud --profile scale")


@app.command()
def down(
    root: Annotated[Path, typer.Option("--dir", help="Where `loopline up` put them.")] = Path(
        ".loopline/scale"
    ),
) -> None:
    """Stop the servers `loopline up` started."""
    from loopline.servers.profile import down as stop

    count = stop(root, stopped=lambda name: typer.echo(f"stopped {name}"))
    typer.echo(f"{count} servers were running" if count else "nothing was running")


def main() -> None:
    """The ``loopline`` command; loopline's errors print as their message, not a traceback."""
    try:
        app()
    except loopline.LooplineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
