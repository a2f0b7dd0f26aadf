"""``loopline train llm`` from end to end: train under torchrun, following the steps
into an MLflow run and a progress bar; then take the last checkpoint's weights, write
the HTML report, and register the model (safetensors weights, tokenizer, shape,
checksums) from the same run.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from loopline.exceptions import LooplineError
from loopline.llm import export, report
from loopline.llm.configs import named
from loopline.llm.data import Manifest, prepare
from loopline.llm.follow import Follower
from loopline.llm.launch import default_processes, launch
from loopline.llm.settings import TrainSettings, load
from loopline.registry import Registry
from loopline.registry.tracking import TrackedRun


class TrainingFailedError(LooplineError):
    """torchrun gave up: a worker failed more often than ``--max-restarts`` allows."""


@dataclass(frozen=True)
class Trained:
    version: int
    report: Path
    summary: dict[str, Any]


def train_and_register(
    config: Path,
    *,
    registry: Registry | None = None,
    processes: int | None = None,
    max_restarts: int = 3,
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> Trained:
    """Train with the settings in ``config`` and register the result as the next
    version of the settings' ``name``; return it with its report and summary.

    Raises:
        TrainingFailedError: torchrun exited with an error; the MLflow run is marked failed.
    """
    settings = load(config)
    manifest = prepare(settings.data, vocab_size=settings.vocab_size)
    registry = registry or Registry()
    n = processes or default_processes()
    tracked = registry.track(
        settings.name,
        params={**_params(settings), "processes": n},
        tags={"loopline.kind": "llm-train"},
    )
    log = settings.out / "metrics.jsonl"
    with _Bar(settings, console) as show:
        follower = Follower(log, tracked=tracked, show=show)
        follower.start()
        try:
            code = launch(config, processes=n, max_restarts=max_restarts, env=env)
        finally:
            follower.stop()
    if code:
        tracked.finish("FAILED")
        raise TrainingFailedError(
            f"Training failed (torchrun exit status {code}); see the workers' output above. "
            f"A new `loopline train llm` resumes from the last checkpoint in {settings.out}."
        )
    try:
        trained = _register(settings, manifest, n, registry, tracked)
    except BaseException:
        tracked.finish("FAILED")
        raise
    tracked.finish()
    return trained


def _register(
    settings: TrainSettings, manifest: Manifest, processes: int, registry: Registry,
    tracked: TrackedRun,
) -> Trained:  # fmt: skip
    """The report, and the last checkpoint's model registered from ``tracked``."""
    from loopline.llm.worker import latest

    checkpoint = latest(settings.out / "checkpoints")
    if checkpoint is None:
        raise TrainingFailedError(f"The run ended with no checkpoint in {settings.out}.")
    shape = named(settings.shape, vocab_size=manifest.vocab_size, seq_len=settings.seq_len)
    model = export.from_checkpoint(shape, checkpoint)
    log = settings.out / "metrics.jsonl"
    run = report.read_log(log)
    last = run.steps[settings.steps]
    unigram = manifest.unigram_bits_per_byte
    summary: dict[str, Any] = {
        "model": settings.name,
        "shape": settings.shape,
        "parameters": shape.params(),
        "steps": settings.steps,
        "processes": processes,
        "restarts": len(run.restarts),
        "replayed_steps": run.replayed,  # logged again after a resume
        "replayed_identical": run.identical,  # ... with the pre-crash loss, bit for bit
        "loss": last["loss"],
        "val_loss": last.get("val_loss"),
        "val_bits_per_byte": last.get("val_bits_per_byte"),
        "unigram_bits_per_byte": unigram,
        "tokens_per_s_median": statistics.median(r["tokens_per_s"] for r in run.steps.values()),
    }
    path = report.write(
        settings.out / "report.html",
        title=f"loopline train llm: {settings.name} ({settings.shape})",
        log=log,
        summary=summary,
        unigram_bits_per_byte=unigram if unigram is not None else math.nan,
        notes=[f"Corpus: {manifest.data['corpus']}; held out: {manifest.data['held_out']}."],
    )
    final = {k: float(v) for k, v in summary.items() if k in FINAL and v is not None}
    tracked.log(settings.steps, final)  # at the last step: the run's latest values
    version = registry.register(
        settings.name,
        bundle=export.bundle(model, manifest.tokenizer_path, meta={"step": settings.steps}),
        metrics={},
        params={},
        tags={"dataset": str(manifest.data["corpus"]), "checkpoint": checkpoint.name},
        run=tracked,
    ).version
    return Trained(version, path, {**summary, "version": version, "report": str(path)})


# the summary's figures that no step logged
FINAL = ("unigram_bits_per_byte", "restarts", "replayed_steps", "replayed_identical",
         "tokens_per_s_median")  # fmt: skip


def _params(settings: TrainSettings) -> dict[str, object]:
    return {k: str(v) for k, v in asdict(settings).items()}


class _Bar:
    """A rich progress bar on stderr that a followed record moves (see Follower)."""

    def __init__(self, settings: TrainSettings, console: Console | None) -> None:
        self.progress = Progress(
            TextColumn("[bold]train llm"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
            console=console or Console(file=sys.stderr),
        )  # fmt: skip
        self.task = self.progress.add_task("train", total=settings.steps, status="starting")
        self.val = ""

    def __enter__(self) -> Any:
        self.progress.start()
        return self.show

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def show(self, record: dict[str, Any]) -> None:
        if "event" in record:
            verb = "resumed at step" if record["event"] == "resumed" else "started at step"
            self.progress.console.print(f"{verb} {record['step']} on {record['world']} ranks")
            self.progress.update(self.task, completed=record["step"])
            return
        if "val_bits_per_byte" in record:
            self.val = f"  val {record['val_bits_per_byte']:.3f} bits/byte"
        status = f"loss {record['loss']:.3f}  {record['tokens_per_s']:,.0f} tok/s{self.val}"
        self.progress.update(self.task, completed=record["step"], status=status)
