"""The fraud application's commands, registered into the ``loopline`` verbs (entry point
``loopline.applications``): ``serve fraud``, ``train fraud``, ``simulate fraud``,
``work fraud`` and ``features validate``. Heavy imports happen inside the commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from loopline.cli import Verbs, show_record
from loopline.cli_models import RegistryOpt
from loopline.cli_options import DecisionsOpt, HostOpt, JsonOpt, KeysOpt, PortOpt
from loopline.ops import plan_command


def serve(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    state: Annotated[Path, typer.Option(help="Features, decisions, token key, API keys.")] = Path(
        ".loopline/serving"
    ),
    registry: RegistryOpt = None,
    rules: Annotated[Path | None, typer.Option(help="Rule file (YAML).")] = None,
    keys: KeysOpt = None,
    features: Annotated[
        str | None, typer.Option(help="redis://host:port/db online store (default: embedded).")
    ] = None,
    decisions: DecisionsOpt = None,
    settings: Annotated[
        Path | None,
        typer.Option(help="Settings file (loopline.settings); replaces the URL options."),
    ] = None,
    learn: Annotated[
        bool | None,
        typer.Option(
            help="Fold decided transactions into the online features here (default: yes, "
            "unless the settings name a shared store that feature workers write)."
        ),
    ] = None,
    body_timeout_s: Annotated[
        float, typer.Option(min=0.01, help="A body not all arrived by then is a 408.")
    ] = 10.0,
) -> None:
    """Serve fraud decisions from the registry's champion (POST /v1/score)."""
    from dataclasses import replace

    from loopline.apps.fraud.service import DEFAULT_RULES, ServeOptions
    from loopline.apps.fraud.service import serve as run
    from loopline.serving import Limits
    from loopline.settings import load_settings

    limits = Limits(body_timeout_s=body_timeout_s)
    if settings is not None or os.environ.get("LOOPLINE_SETTINGS"):
        options = ServeOptions.of(
            load_settings(settings), rules=rules or DEFAULT_RULES, keys=keys, limits=limits
        )
    else:
        options = ServeOptions(
            state=state,
            registry=registry,
            rules=rules or DEFAULT_RULES,
            keys=keys,
            features=features,
            decisions=decisions,
            limits=limits,
        )
    run(options if learn is None else replace(options, learn=learn), host=host, port=port)


def train(
    data: Annotated[str, typer.Option(help="simulator, handbook or ulb.")] = "simulator",
    seed: Annotated[int, typer.Option(help="Simulation and training seed.")] = 0,
    config: Annotated[
        Path | None, typer.Option(help="TOML file of LightGBM hyperparameters.")
    ] = None,
    precision_target: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Precision the threshold must reach.")
    ] = 0.9,
    customers: Annotated[int | None, typer.Option(min=1, help="Simulated customers.")] = None,
    days: Annotated[int | None, typer.Option(min=1, help="Simulated days.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for reports.")] = Path(".loopline/models"),
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train the fraud model, evaluate it, write its report, register it."""
    from loopline.apps.fraud.train import TrainOptions, run
    from loopline.exceptions import ConfigError
    from loopline.registry import Registry
    from loopline.training import BoostingConfig

    if data not in ("simulator", "handbook", "ulb"):
        raise ConfigError(f"--data must be simulator, handbook or ulb; got {data!r}.")
    result = run(
        TrainOptions(
            source=data,  # type: ignore[arg-type]
            seed=seed,
            config=BoostingConfig.from_toml(config) if config else None,
            precision_target=precision_target,
            customers=customers,
            days=days,
            out=out,
            registry=Registry(registry) if registry else None,
            progress=not as_json,
        )
    )
    show_record(result, as_json=as_json)


def simulate(
    out: Annotated[Path | None, typer.Option(help="Write Parquet files here.")] = None,
    customers: Annotated[int | None, typer.Option(min=1, help="Customers (cards).")] = None,
    terminals: Annotated[int | None, typer.Option(min=1, help="Terminals.")] = None,
    days: Annotated[int | None, typer.Option(min=1, help="Days simulated.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 0,
    profile: Annotated[str, typer.Option(help="full (all scenarios) or handbook.")] = "full",
    publish: Annotated[
        str | None, typer.Option(help="Replay into this event log (file://, kafka://, redis://).")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(min=1, help="Records per second when publishing (default: max).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate card transactions with fraud scenarios and late labels."""
    import time
    from typing import Any

    import numpy as np

    from loopline.apps.fraud import data
    from loopline.apps.fraud.simulator import profile as make_profile
    from loopline.apps.fraud.simulator import simulate as run

    if out is None and publish is None:
        raise typer.BadParameter("Give --out DIR, --publish URL, or both.")
    setting = make_profile(profile, customers=customers, terminals=terminals, days=days)
    started = time.perf_counter()
    sim = run(setting, seed=seed)
    took = time.perf_counter() - started
    summary: dict[str, Any] = {
        "profile": setting.name,
        "transactions": sim.transactions.num_rows,
        "labels": sim.labels.num_rows,
        "frauds": int(sim.transactions["is_fraud"].to_numpy().sum(dtype=np.int64)),
        "seconds": round(took, 3),
        "transactions_per_s": round(sim.transactions.num_rows / took),
    }
    if out is not None:
        summary["files"] = [str(p) for p in data.write(sim, out)]
    if publish is not None:
        from loopline.apps.fraud.erasure import open_events
        from loopline.apps.fraud.publish import publish as replay
        from loopline.settings import load_settings

        found = load_settings()  # where the per-customer keys are, for a Kafka log
        log = open_events(publish, keys=found.subject_keys or found.decisions)
        try:
            summary["published"] = replay(log, sim.transactions, sim.labels, rate=rate)
        finally:
            log.close()
    show_record(summary, as_json=as_json)


def work(
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


def validate(
    customers: Annotated[int, typer.Option(min=10, help="Simulated customers.")] = 500,
    days: Annotated[int, typer.Option(min=2, help="Simulated days.")] = 45,
    sample: Annotated[int, typer.Option(min=1, help="Transactions compared.")] = 1000,
    seed: Annotated[int, typer.Option(help="Simulation and sampling seed.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Replay a simulated fraud stream (transactions and late labels) through the online
    and offline engines; print each fraud feature's mismatch rate."""
    import json

    from rich.console import Console
    from rich.table import Table

    from loopline.apps.fraud import data, fraud_feature_set
    from loopline.apps.fraud.simulator import profile, simulate
    from loopline.features import validate as compare

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
    rates = compare(fraud_feature_set(), columns, sample=sample, seed=seed)
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


def score(
    inputs: Annotated[
        list[Path],
        typer.Option("--input", help="Parquet files or folders (`loopline simulate fraud --out`)."),
    ],
    output: Annotated[
        str, typer.Option(help="sqlite:///PATH or postgresql://... (results database).")
    ],
    registry: RegistryOpt = None,
    model: Annotated[str, typer.Option(help="Registered model name.")] = "fraud",
    ref: Annotated[str, typer.Option(help="Alias or version number.")] = "champion",
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows scored and committed at once.")] = (
        50_000
    ),
    table: Annotated[str, typer.Option(help="Results table (progress: TABLE_chunks).")] = (
        "fraud_scores"
    ),
    as_json: JsonOpt = False,
) -> None:
    """Score transactions in batch into a database: offline point-in-time features, the
    registry's model, chunks committed with their progress (a rerun resumes)."""
    from loopline.apps.fraud.batch import ScoreOptions, run
    from loopline.registry import Registry

    options = ScoreOptions(
        inputs=inputs,
        output=output,
        registry=Registry(registry) if registry else Registry(),
        model=model,
        ref=int(ref) if ref.isdigit() else ref,
        chunk_rows=chunk_rows,
        table=table,
        progress=not as_json,
    )
    show_record(run(options), as_json=as_json)


def ci(
    registry: RegistryOpt = None,
    seed: Annotated[int, typer.Option(help="Training data's simulation seed.")] = 0,
    customers: Annotated[int, typer.Option(min=1, help="Simulated customers.")] = 1000,
    days: Annotated[int, typer.Option(min=86, help="Simulated days (86 or more).")] = 90,
    config: Annotated[
        Path | None, typer.Option(help="TOML file of LightGBM hyperparameters.")
    ] = None,
    tolerance: Annotated[
        float, typer.Option(min=0, max=1, help="Largest overall fall in average precision.")
    ] = 0.01,
    slice_tolerance: Annotated[
        float, typer.Option(min=0, max=1, help="Largest fall in a judged slice.")
    ] = 0.05,
    min_slice_support: Annotated[
        int, typer.Option(min=1, help="Frauds a slice needs to be judged.")
    ] = 30,
    canary_percent: Annotated[
        float, typer.Option(min=0.01, max=100, help="Routing keys the canary answers.")
    ] = 5.0,
    force: Annotated[bool, typer.Option(help="Run even if nothing changed.")] = False,
    out: Annotated[
        Path, typer.Option(help="Folder for summary.json, report.md and the training report.")
    ] = Path(".loopline/ci"),
    as_json: JsonOpt = False,
) -> None:
    """Model CI: if the code, features or data changed, train, check against the
    champion on a fixed set and its slices, register, start shadow and canary.
    Exit 1 on a regression or a rolled-back canary."""
    import json

    from loopline.apps.fraud.ci import FraudCi
    from loopline.ops import CiOptions, Tolerances, run_ci_and_report, show_ci
    from loopline.registry import Registry
    from loopline.settings import load_settings
    from loopline.training import BoostingConfig

    uri = registry or load_settings().registry or None
    reg = Registry(uri) if uri else Registry()
    app = FraudCi(
        registry=reg, seed=seed, customers=customers, days=days, out=out,
        config=BoostingConfig.from_toml(config) if config else None,
    )  # fmt: skip
    tolerances = Tolerances(
        metric=tolerance, slice=slice_tolerance, min_slice_support=min_slice_support
    )
    options = CiOptions(tolerances=tolerances, canary_percent=canary_percent, force=force)
    summary = run_ci_and_report(app, reg, options, out=out, progress=not as_json)
    typer.echo(json.dumps(summary, default=str) if as_json else show_ci(summary))
    raise typer.Exit(0 if summary["passed"] else 1)


def register(verbs: Verbs) -> None:
    """The fraud application's commands, under ``loopline``'s verbs."""
    verbs.serve.command("fraud")(serve)
    verbs.train.command("fraud")(train)
    verbs.simulate.command("fraud")(simulate)
    verbs.work.command("fraud")(work)
    verbs.ci.command("fraud")(ci)
    verbs.plan.command("fraud")(
        plan_command(
            "fraud",
            "loopline.apps.fraud.plan:workload",
            unit="transactions",
            flag="--tps",
            rate=100.0,
            latency_ms=100.0,
            retention_days=90.0,
            title="fraud decision service",
        )
    )
    verbs.features.command("validate")(validate)
    verbs.erasers["fraud"] = "loopline.apps.fraud.erasure:erase_with_settings"
    verbs.score.command("fraud")(score)
