"""Command-line options the applications' commands share (their types, defaults and
help in one place): where a service listens, its keys, event log and prediction log,
and ``--json``. The registry's is :data:`loopline.cli_models.RegistryOpt`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

HostOpt = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOpt = Annotated[int, typer.Option(help="Port.")]
KeysOpt = Annotated[Path | None, typer.Option(help="API key file (default: STATE/keys.json).")]
EventsOpt = Annotated[
    str | None, typer.Option(help="Event log URL (default: file:// under STATE).")
]
DecisionsOpt = Annotated[
    str | None, typer.Option(help="postgresql://... prediction log (default: SQLite).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
