"""The vision application's commands, registered into the ``loopline`` verbs (entry point
``loopline.applications``): ``train vision`` and ``demo vision``. PyTorch, ONNX Runtime
and OpenCV are imported inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopline.cli import Verbs, show_record
from loopline.cli_models import RegistryOpt
from loopline.cli_options import JsonOpt
from loopline.ops import plan_command

FramesOpt = Annotated[int, typer.Option(min=64, help="Generated training frames.")]
EpochsOpt = Annotated[int, typer.Option(min=1, help="Passes over them.")]


def train(
    frames: FramesOpt = 4000,
    epochs: EpochsOpt = 4,
    width: Annotated[int, typer.Option(min=4, help="The network's channel scale.")] = 24,
    seed: Annotated[int, typer.Option(help="Of the generated training set.")] = 1,
    registry: RegistryOpt = None,
    promote: Annotated[
        bool, typer.Option(help="Promote to champion if the safety gate passes.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Train the detector on generated scenes (CPU), export it to ONNX and static INT8,
    calibrate its confidence, measure it, and register it; promote it when it does not
    regress on the safety suite against the champion."""
    from loopline.apps.vision import gate, pipeline
    from loopline.apps.vision.detector.train import TrainConfig
    from loopline.registry import Registry, RegistryError

    reg = Registry(registry) if registry else Registry()
    config = TrainConfig(frames=frames, epochs=epochs, width=width, seed=seed)
    built = pipeline.build(
        config, evaluation=pipeline.held_out(300), say=lambda s: typer.echo(s, err=True)
    )
    version = pipeline.register(reg, built)
    candidate = gate.score_suite(pipeline.detector(built))
    try:
        champion = gate.score_suite(pipeline.load(reg.resolve(pipeline.MODEL, "champion")))
    except RegistryError:  # nothing promoted yet
        champion = None
    verdict = gate.release_gate(candidate, champion)
    reg.record(pipeline.MODEL, version, "release gate", trigger="train",
               passed=verdict.passed, why=verdict.why())  # fmt: skip
    if promote and verdict.passed:
        reg.promote(pipeline.MODEL, version, trigger="train", why=verdict.why())
    show_record(
        {"model": pipeline.MODEL, "version": version, **built.metrics(),
         "gate": verdict.why(), "promoted": promote and verdict.passed},
        as_json=as_json,
    )  # fmt: skip


def demo(
    out: Annotated[Path, typer.Option(help="Its registry, fleet and report.")] = Path(
        ".loopline/vision-demo"
    ),
    frames: FramesOpt = 1200,
    epochs: EpochsOpt = 3,
    vehicles: Annotated[int, typer.Option(min=4, help="Simulated vehicles.")] = 40,
    as_json: JsonOpt = False,
) -> None:
    """Generate scenes, train and quantize a detector, roll it out over the air, drive with
    faults injected, run the fleet loop and update again; an HTML report (CPU, minutes)."""
    from loopline.apps.vision.demo import run

    summary = run(
        out, frames=frames, epochs=epochs, vehicles=vehicles,
        say=lambda line: typer.echo(line, err=True),
    )  # fmt: skip
    show_record(summary, as_json=as_json)


def register(verbs: Verbs) -> None:
    """The vision application's commands, under ``loopline``'s verbs."""
    verbs.train.command("vision")(train)
    verbs.demo.command("vision")(demo)
    verbs.plan.command("vision")(
        plan_command(
            "vision",
            "loopline.apps.vision.plan:workload",
            unit="frames",
            flag="--fps",
            rate=300.0,
            peak=1.0,
            latency_ms=30.0,
            retention_days=7.0,
            title="perception (camera streams)",
        )
    )
