"""The moderation application's commands, registered into the ``loopline`` verbs (entry
point ``loopline.applications``): ``train moderation``, ``serve moderation`` and ``demo
moderation``. The classifiers, OCR and Whisper are imported inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopline.cli import Verbs, show_record
from loopline.cli_models import RegistryOpt
from loopline.cli_options import DecisionsOpt, EventsOpt, HostOpt, JsonOpt, KeysOpt, PortOpt
from loopline.ops import plan_command

StateOpt = Annotated[
    Path, typer.Option(help="Event log, prediction log, review queue, jobs, API keys.")
]
PerCellOpt = Annotated[int, typer.Option(min=2, help="Training texts per (language, label) cell.")]


def train(
    per_cell: PerCellOpt = 24,
    images: Annotated[int, typer.Option(min=0, help="Texts drawn into images (fusion).")] = 60,
    speech: Annotated[int, typer.Option(min=0, help="Texts spoken (fusion).")] = 12,
    seed: Annotated[int, typer.Option(help="Of the training set.")] = 0,
    registry: RegistryOpt = None,
    promote: Annotated[bool, typer.Option(help="Make it the champion.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Fit the cascade (fast and thorough text classifiers, the fusion of modalities) on
    the weakly labelled training set, measure it on the evaluation set's texts, and
    register it."""
    from loopline.apps.moderation import pipeline
    from loopline.apps.moderation.measure import text_quality
    from loopline.registry import Registry

    reg = Registry(registry) if registry else Registry()
    config = pipeline.TrainConfig(seed=seed, per_cell=per_cell, images=images, speech=speech)
    built = pipeline.build(config, say=lambda s: typer.echo(s, err=True))
    figures = text_quality(built.cascade, built.threshold)
    version = pipeline.register(reg, built, metrics=figures)
    if promote:
        reg.promote(pipeline.MODEL, version, trigger="train", why="trained by hand")
    show_record({"model": pipeline.MODEL, "version": version, **built.metrics, **figures,
                 "promoted": promote}, as_json=as_json)  # fmt: skip


def serve(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    state: StateOpt = Path(".loopline/moderation"),
    registry: RegistryOpt = None,
    keys: KeysOpt = None,
    events: EventsOpt = None,
    decisions: DecisionsOpt = None,
    policies: Annotated[
        Path | None, typer.Option(help="Regional policies (YAML; re-read when changed).")
    ] = None,
) -> None:
    """Serve moderation from the registry's champion (POST /v1/moderate, GET
    /v1/moderate/{id}, POST /v1/review/claim, /v1/review/verdict, /v1/appeal)."""
    from loopline.apps.moderation.service import ServeOptions
    from loopline.apps.moderation.service import serve as run

    options = ServeOptions(state=state, registry=registry, keys=keys, events=events,
                           decisions=decisions, policies=policies)  # fmt: skip
    run(options, host=host, port=port)


def demo(
    out: Annotated[Path, typer.Option(help="Its registry, state and report.")] = Path(
        ".loopline/moderation-demo"
    ),
    per_cell: PerCellOpt = 16,
    media: Annotated[bool, typer.Option(help="Images, speech and video items too.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Train the cascade, serve it, send the evaluation set through the service (text,
    images, audio, video), let simulated reviewers work the queue, feed their verdicts
    back, recalibrate; an HTML report (CPU, minutes)."""
    from loopline.apps.moderation.demo import run

    summary = run(out, per_cell=per_cell, media=media, say=lambda s: typer.echo(s, err=True))
    show_record(summary, as_json=as_json)


def register(verbs: Verbs) -> None:
    """The moderation application's commands, under ``loopline``'s verbs."""
    verbs.train.command("moderation")(train)
    verbs.serve.command("moderation")(serve)
    verbs.demo.command("moderation")(demo)
    verbs.plan.command("moderation")(
        plan_command(
            "moderation",
            "loopline.apps.moderation.plan:workload",
            unit="items",
            flag="--ips",
            rate=50.0,
            latency_ms=500.0,
            retention_days=90.0,
            title="moderation cascade",
        )
    )
