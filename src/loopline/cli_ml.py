"""``loopline simulate``, ``loopline train`` and ``loopline models``: the data, training
and registry commands. Heavy imports (LightGBM, MLflow) happen inside the commands."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

simulate_app = typer.Typer(help="Simulated data for the applications.", no_args_is_help=True)
train_app = typer.Typer(help="Train, evaluate and register models.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry (MLflow).", no_args_is_help=True)

RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help="MLflow tracking URI (default: SQLite under .loopline/registry).",
    ),
]


@simulate_app.command("fraud")
def simulate_fraud(
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Simulate card transactions with fraud scenarios and late labels."""
    import time

    import numpy as np

    from loopline.apps.fraud import data
    from loopline.apps.fraud.simulator import profile as make_profile
    from loopline.apps.fraud.simulator import simulate

    if out is None and publish is None:
        raise typer.BadParameter("Give --out DIR, --publish URL, or both.")
    setting = make_profile(profile, customers=customers, terminals=terminals, days=days)
    started = time.perf_counter()
    sim = simulate(setting, seed=seed)
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
        from loopline.apps.fraud.publish import publish as replay
        from loopline.events import open_log

        log = open_log(publish)
        try:
            summary["published"] = replay(log, sim.transactions, sim.labels, rate=rate)
        finally:
            log.close()
    typer.echo(json.dumps(summary) if as_json else _lines(summary))


@train_app.command("fraud")
def train_fraud(
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
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
    typer.echo(json.dumps(result) if as_json else _lines(result))


@models_app.command("list")
def models_list(
    name: Annotated[str | None, typer.Argument(help="A model (default: all).")] = None,
    registry: RegistryOpt = None,
) -> None:
    """Registered models and their versions, with aliases and headline metrics."""
    from rich.console import Console
    from rich.table import Table

    from loopline.registry import Registry

    reg = Registry(registry) if registry else Registry()
    table = Table(title="registered models")
    for col in ("model", "version", "aliases", "roc_auc", "average_precision", "created"):
        table.add_column(col)
    import datetime as dt

    for model in [name] if name else reg.names():
        for v in reg.versions(model):
            created = dt.datetime.fromtimestamp(v.created_ms / 1000, dt.UTC)
            table.add_row(
                model,
                str(v.version),
                ", ".join(v.aliases),
                _metric(v.metrics, "roc_auc"),
                _metric(v.metrics, "average_precision"),
                created.strftime("%Y-%m-%d %H:%M"),
            )
    Console().print(table)


@models_app.command("show")
def models_show(
    name: str,
    ref: Annotated[str, typer.Argument(help="Version number or alias.")] = "champion",
    registry: RegistryOpt = None,
) -> None:
    """Everything recorded with one version: metrics, parameters, lineage, checksums."""
    from loopline.registry import Registry

    v = (Registry(registry) if registry else Registry()).get(name, ref)
    record = {
        "model": v.name,
        "version": v.version,
        "aliases": list(v.aliases),
        "path": str(v.path),
        "metrics": v.metrics,
        "params": v.params,
        "tags": v.tags,
    }
    typer.echo(json.dumps(record, indent=2))


@models_app.command("promote")
def models_promote(
    name: str,
    version: int,
    alias: Annotated[str, typer.Option(help="champion or challenger.")] = "champion",
    registry: RegistryOpt = None,
) -> None:
    """Point an alias at a version (the previous one is kept for rollback)."""
    from loopline.registry import Registry

    v = (Registry(registry) if registry else Registry()).promote(name, version, alias)
    typer.echo(f"{name}: {alias} -> version {v.version}")


@models_app.command("rollback")
def models_rollback(
    name: str,
    alias: Annotated[str, typer.Option(help="The alias to move back.")] = "champion",
    registry: RegistryOpt = None,
) -> None:
    """Point an alias back at the version it had before its last promotion."""
    from loopline.registry import Registry

    v = (Registry(registry) if registry else Registry()).rollback(name, alias)
    typer.echo(f"{name}: {alias} -> version {v.version} (rolled back)")


@models_app.command("history")
def models_history(
    name: str,
    registry: RegistryOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a step.")] = False,
) -> None:
    """Every recorded step of a model: promotions, gates, rollbacks; what triggered each,
    whether it passed and why."""
    import datetime as dt
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from loopline.registry import Registry

    steps = (Registry(registry) if registry else Registry()).history(name)
    if as_json:
        for step in steps:
            typer.echo(json.dumps(asdict(step)))
        return
    table = Table(title=f"{name}: history")
    for col in ("when (UTC)", "version", "action", "trigger", "passed", "why"):
        table.add_column(col)
    for step in steps:
        when = dt.datetime.fromtimestamp(step.at_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            when, str(step.version), step.action, step.trigger,
            "yes" if step.passed else "no", step.why,
        )  # fmt: skip
    Console(width=200).print(table)


def _metric(metrics: dict[str, float], key: str) -> str:
    return f"{metrics[key]:.4f}" if key in metrics else "-"


def _lines(record: dict[str, Any]) -> str:
    return "\n".join(
        f"{k}: {json.dumps(v) if isinstance(v, dict | list) else v}" for k, v in record.items()
    )


serve_app = typer.Typer(help="The real-time decision service.", no_args_is_help=True)


@serve_app.command("fraud")
def serve_fraud(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    state: Annotated[Path, typer.Option(help="Features, decisions, token key, API keys.")] = Path(
        ".loopline/serving"
    ),
    registry: RegistryOpt = None,
    rules: Annotated[Path | None, typer.Option(help="Rule file (YAML).")] = None,
    keys: Annotated[
        Path | None, typer.Option(help="API key file (default: STATE/keys.json).")
    ] = None,
    features: Annotated[
        str | None, typer.Option(help="redis://host:port/db online store (default: embedded).")
    ] = None,
    decisions: Annotated[
        str | None, typer.Option(help="postgresql://... prediction log (default: SQLite).")
    ] = None,
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
) -> None:
    """Serve fraud decisions from the registry's champion (POST /v1/score)."""
    from dataclasses import replace

    from loopline.apps.fraud.service import DEFAULT_RULES, ServeOptions, serve
    from loopline.settings import load_settings

    if settings is not None or os.environ.get("LOOPLINE_SETTINGS"):
        options = ServeOptions.of(load_settings(settings), rules=rules or DEFAULT_RULES, keys=keys)
    else:
        options = ServeOptions(
            state=state,
            registry=registry,
            rules=rules or DEFAULT_RULES,
            keys=keys,
            features=features,
            decisions=decisions,
        )
    serve(options if learn is None else replace(options, learn=learn), host=host, port=port)


@serve_app.command("key")
def serve_key(
    name: Annotated[str, typer.Option(help="Who the key is for.")],
    scope: Annotated[list[str], typer.Option(help="score and/or admin (repeat).")],
    keys: Annotated[Path, typer.Option(help="API key file.")] = Path(".loopline/serving/keys.json"),
) -> None:
    """Make an API key: prints it once, stores only its SHA-256."""
    from loopline.serving import KeyRing, new_key

    ring = KeyRing.load(keys) if keys.exists() else KeyRing([])
    key, stored = new_key(name, scope)
    ring.keys.append(stored)
    ring.save(keys)
    typer.echo(key)
