"""``loopline models``: the registry's commands. MLflow is imported inside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(help="The model registry (MLflow).", no_args_is_help=True)

RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help="MLflow tracking URI (default: SQLite under .loopline/registry).",
    ),
]


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
    for col in ("model", "version", "aliases", "metrics", "created"):
        table.add_column(col)
    import datetime as dt

    for model in [name] if name else reg.names():
        for v in reg.versions(model):
            created = dt.datetime.fromtimestamp(v.created_ms / 1000, dt.UTC)
            table.add_row(
                model,
                str(v.version),
                ", ".join(v.aliases),
                _headline(v.metrics),
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


@models_app.command("keygen")
def models_keygen(
    folder: Annotated[Path, typer.Option("--dir", help="Where to write the pair.")] = Path(
        ".loopline/keys"
    ),
    name: Annotated[str, typer.Option(help="The files: NAME.key and NAME.pub.")] = "signing",
) -> None:
    """Make an ed25519 key pair for signing model versions: NAME.key (private, mode 0600;
    registration signs with it) and NAME.pub (give it to every server that loads them)."""
    from loopline.exceptions import ConfigError
    from loopline.registry.signing import create_key

    path = folder / f"{name}.key"
    try:
        key_id = create_key(path)
    except FileExistsError:
        raise ConfigError(
            f"{path} exists; a key is never overwritten. Pick another --name."
        ) from None
    typer.echo(f"key {key_id}\nprivate {path} (keep it secret)")
    typer.echo(f"public  {path.with_suffix('.pub')}")


@models_app.command("sign")
def models_sign(
    name: str,
    version: int,
    key: Annotated[
        Path | None,
        typer.Option(help="Private key (default: $LOOPLINE_SIGNING_KEY, else the keys folder)."),
    ] = None,
    from_files: Annotated[
        bool,
        typer.Option(
            "--from-files",
            help="Sign the files as they are now (a version no trusted key signed); "
            "you vouch for them.",
        ),
    ] = False,
    registry: RegistryOpt = None,
) -> None:
    """Add a signature to a version: to rotate keys (it must verify with a trusted key
    first), or, with --from-files, to adopt one registered before signing."""
    from loopline.registry import Registry

    reg = Registry(registry) if registry else Registry()
    key_id = reg.sign(name, version, key=key, from_files=from_files)
    typer.echo(f"{name}:{version} signed by key {key_id}")


@models_app.command("verify")
def models_verify(
    name: str,
    ref: Annotated[str, typer.Argument(help="Version number or alias.")] = "champion",
    registry: RegistryOpt = None,
) -> None:
    """Check a version as serving does before loading it: its location, a trusted
    signature, every file's checksum. Exits 1 if serving would refuse it."""
    from loopline.registry import Registry

    pinned = (Registry(registry) if registry else Registry()).resolve(name, ref)
    typer.echo(
        f"{pinned.label}: signed by key {pinned.key_id}, {len(pinned.checksums)} files verified"
    )


HEADLINES = ("average_precision", "roc_auc", "ndcg_at_10", "recall_at_10", "macro_f1", "accuracy")


def _headline(metrics: dict[str, float]) -> str:
    """The version's headline metrics (those of its task), up to three."""
    shown = [k for k in HEADLINES if k in metrics][:3]
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in shown) or "-"
