"""The recommendation demo's command: ``loopline demo recs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from loopline.cli import Verbs


def demo(
    out: Annotated[Path, typer.Option(help="Where the HTML report goes.")] = Path(
        ".loopline/recs-demo"
    ),
    sessions: Annotated[int, typer.Option(min=50, help="Simulated sessions per phase.")] = 1000,
    quick: Annotated[bool, typer.Option(help="Fewer ALS iterations.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The recommendation loop on MovieLens-100K with simulated users: train, serve,
    retrain, A/B test and interleave, exploration; an HTML report."""
    from loopline.demos.recs.demo import run

    result = run(out, sessions=sessions, quick=quick, say=lambda s: typer.echo(s, err=True))
    if as_json:
        typer.echo(json.dumps(result, default=str))


def register(verbs: Verbs) -> None:
    verbs.demo.command("recs")(demo)
