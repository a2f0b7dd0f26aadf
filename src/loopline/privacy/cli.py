"""``loopline erase --subject ID``: erase one data subject from every store.

The platform does not know what a subject is: each application supplies an eraser,
``module:function`` taking ``(subject_id, settings)`` and returning an
:class:`~loopline.privacy.ErasureReport`, imported only when the command runs.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer, erasers: Mapping[str, str]) -> None:
    """Add the ``erase`` command to ``app``; ``erasers``: application name ->
    ``"module:function"``."""

    def erase(
        subject: Annotated[str, typer.Option(help="The subject's id (e.g. a customer id).")],
        application: Annotated[
            str | None,
            typer.Option("--app", help="Whose subject it is (needed with several)."),
        ] = None,
        settings: Annotated[
            Path | None, typer.Option(help="Settings file (loopline.settings).")
        ] = None,
    ) -> None:
        """Erase one subject's data from every store; print what each store removed (the
        audit line, which names the subject only by a keyed hash)."""
        import msgspec

        from loopline.settings import load_settings

        report = _eraser(erasers, application)(subject, load_settings(settings))
        typer.echo(json.dumps(msgspec.to_builtins(report)))

    app.command("erase")(erase)


def _eraser(erasers: Mapping[str, str], name: str | None) -> Callable[..., object]:
    if name is None and len(erasers) == 1:
        name = next(iter(erasers))
    if name is None or name not in erasers:
        raise typer.BadParameter(
            f"--app must be one of {sorted(erasers)}. Got {name!r}.", param_hint="--app"
        )
    module, _, function = erasers[name].partition(":")
    found: Callable[..., object] = getattr(importlib.import_module(module), function)
    return found
