"""The ``loopline`` command: one entry point, a group per stage and per verb.

The verbs (``serve``, ``train``, ``demo``, ``simulate``, ``scenario``, ``work``,
``features``, ``bench``, ``plan``, ``score``, ``ci``) name no application: each
application registers its commands into them from an entry point of the
``loopline.applications`` group (``register(verbs)``), so ``loopline serve fraud``
comes from the fraud application's own module.
"""

from __future__ import annotations

import json
import runpy
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer

import loopline
from loopline.cli_models import models_app
from loopline.exceptions import ConfigError
from loopline.privacy.cli import register as register_erase

ENTRY_POINTS = "loopline.applications"
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

app = typer.Typer(help="loopline: an end-to-end real-time ML system.", no_args_is_help=True)
events_app = typer.Typer(help="Event log: inspect topics and records.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(models_app, name="models")


@dataclass(frozen=True)
class Verbs:
    """The command groups an application registers its commands into, and its eraser
    of a data subject (``erasers``: application name -> ``"module:function"``, see
    :mod:`loopline.privacy.cli`)."""

    serve: typer.Typer
    train: typer.Typer
    demo: typer.Typer
    simulate: typer.Typer
    scenario: typer.Typer
    work: typer.Typer
    features: typer.Typer
    bench: typer.Typer
    plan: typer.Typer
    score: typer.Typer
    ci: typer.Typer
    erasers: dict[str, str] = field(default_factory=dict)


VERBS = Verbs(
    serve=typer.Typer(help="Serve an application (and make API keys).", no_args_is_help=True),
    train=typer.Typer(help="Train, evaluate and register a model.", no_args_is_help=True),
    demo=typer.Typer(help="Guided demos on embedded defaults.", no_args_is_help=True),
    simulate=typer.Typer(help="Simulated data for the applications.", no_args_is_help=True),
    scenario=typer.Typer(
        help="Scenario checks: whole loops on simulated streams.", no_args_is_help=True
    ),
    work=typer.Typer(help="Stream workers of the scale-out profile.", no_args_is_help=True),
    features=typer.Typer(help="Feature engine: definitions, consistency.", no_args_is_help=True),
    bench=typer.Typer(
        help="Benchmarks: `loopline bench NAME [ARGS]` runs benchmarks/NAME.py.",
        no_args_is_help=True,
    ),
    plan=typer.Typer(
        help="Plans: cores, memory, storage and cost before a run.", no_args_is_help=True
    ),
    score=typer.Typer(help="Batch scoring into a database.", no_args_is_help=True),
    ci=typer.Typer(
        help="Model CI: train, check against the champion, register, roll out.",
        no_args_is_help=True,
    ),
)
_VERB_NAMES = (
    "serve",
    "train",
    "demo",
    "simulate",
    "scenario",
    "work",
    "features",
    "bench",
    "plan",
    "score",
    "ci",
)
for _verb in _VERB_NAMES:
    app.add_typer(getattr(VERBS, _verb), name=_verb)


def register_applications(verbs: Verbs = VERBS) -> list[str]:
    """Let every installed application register its commands; return their names."""
    names = []
    for entry in sorted(entry_points(group=ENTRY_POINTS), key=lambda e: e.name):
        entry.load()(verbs)
        names.append(entry.name)
    return names


def show_record(record: dict[str, Any], *, as_json: bool) -> None:
    """A command's result: one JSON object, or one ``key: value`` line a field."""
    if as_json:
        typer.echo(json.dumps(record))
        return
    for k, v in record.items():
        typer.echo(f"{k}: {json.dumps(v) if isinstance(v, dict | list) else v}")


@app.command()
def version() -> None:
    """Print loopline's version."""
    typer.echo(loopline.__version__)


@VERBS.serve.command("key")
def serve_key(
    name: Annotated[str, typer.Option(help="Who the key is for.")],
    scope: Annotated[
        list[str] | None, typer.Option(help="score, detail, monitor, label and/or admin (repeat).")
    ] = None,
    keys: Annotated[Path, typer.Option(help="API key file.")] = Path(".loopline/serving/keys.json"),
    expires_days: Annotated[
        float | None, typer.Option(min=0.001, help="The key stops working after this.")
    ] = None,
    revoke: Annotated[bool, typer.Option(help="Revoke the keys named NAME instead.")] = False,
) -> None:
    """Make an API key (printed once; only its SHA-256 is stored), or revoke one. A
    running service reads the key file again within seconds: no restart."""
    import time

    from loopline.serving import KeyRing, new_key

    ring = KeyRing.load(keys) if keys.exists() else KeyRing([])
    if revoke:
        count = ring.revoke(name)
        if not count:
            raise ConfigError(f"No valid key named {name!r} in {keys}.")
        ring.save(keys)
        typer.echo(f"revoked {count} key(s) named {name!r}")
        return
    if not scope:
        raise typer.BadParameter("Give at least one --scope.", param_hint="--scope")
    expires = None if expires_days is None else int((time.time() + expires_days * 86400) * 1000)
    key, stored = new_key(name, scope, expires_ms=expires)
    ring.keys.append(stored)
    ring.save(keys)
    typer.echo(key)


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


def benchmarks() -> list[str]:
    """The benchmarks of the source checkout (none in an installed wheel): the scripts
    whose docstring opens with their command, ``loopline bench NAME``."""
    if not BENCHMARKS.is_dir():
        return []
    return sorted(
        p.stem for p in BENCHMARKS.glob("*.py") if f"loopline bench {p.stem}" in p.read_text()
    )


def run_benchmark(name: str, args: list[str]) -> None:
    """Run ``benchmarks/<name>.py`` (it ships with the source checkout) with ``args``."""
    if name not in benchmarks():
        typer.echo(
            f"No benchmark {name!r} in {BENCHMARKS} (found: {', '.join(benchmarks()) or 'none'})."
            " Benchmarks ship with the source checkout; run this from a clone installed with"
            " `pip install -e`.",
            err=True,
        )
        raise typer.Exit(2)
    script = BENCHMARKS / f"{name}.py"
    sys.argv = [str(script), *args]
    runpy.run_path(str(script), run_name="__main__")


def _bench_command(name: str) -> None:
    def command(ctx: typer.Context) -> None:
        run_benchmark(name, ctx.args)

    command.__doc__ = _first_line(BENCHMARKS / f"{name}.py")
    VERBS.bench.command(
        name, context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
    )(command)


def _first_line(script: Path) -> str:
    """A script's docstring's first line (its help)."""
    for line in script.read_text().splitlines():
        text = line.strip().strip('"').strip()
        if text:
            return text
    return script.stem


for _name in benchmarks():
    _bench_command(_name)


@app.command()
def up(
    profile: Annotated[str, typer.Option(help="Which parts: scale (Kafka, Redis, ...).")],
    root: Annotated[Path, typer.Option("--dir", help="The servers' data (recreated).")] = Path(
        ".loopline/scale"
    ),
    partitions: Annotated[int, typer.Option(min=1, help="Event topic partitions.")] = 4,
    processes: Annotated[int, typer.Option(min=1, help="Scorers and feature workers.")] = 2,
) -> None:
    """Start the scale-out profile's servers on 127.0.0.1 (noida-db Kafka broker,
    redis-server, PostgreSQL, MLflow tracking server) with this run's passwords, and
    write their settings file (mode 0600). Passwords are never printed."""
    from loopline.servers.credentials import masked
    from loopline.servers.profile import PROFILES
    from loopline.servers.profile import up as start

    if profile not in PROFILES:
        raise ConfigError(f"--profile {profile!r}: choose one of {', '.join(PROFILES)}.")
    settings = start(
        root,
        partitions=partitions,
        processes=processes,
        started=lambda r: typer.echo(
            f"started {r.name:<13} {masked(r.url)}  (pid {r.pid}, log {r.log})"
        ),
    )
    typer.echo(
        f"settings: {settings} (mode 0600: its URLs carry the passwords)\n"
        "next: loopline demo APP --profile scale"
    )


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


register_applications()
register_erase(app, VERBS.erasers)


def main() -> None:
    """The ``loopline`` command; loopline's errors print as their message, not a traceback."""
    try:
        app()
    except loopline.LooplineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None


__all__ = ["VERBS", "Verbs", "app", "main", "register_applications", "run_benchmark", "show_record"]
