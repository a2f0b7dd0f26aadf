"""The LLM commands, registered into the ``loopline`` verbs (entry point
``loopline.applications``): ``plan llm`` and ``train llm``. PyTorch is imported inside
the commands that train, never here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopline.cli import Verbs, show_record
from loopline.cli_models import RegistryOpt

ZERO = {"0": "none", "1": "zero1", "2": "zero2", "3": "zero3", "fsdp": "fsdp"}


def plan_llm(
    params: Annotated[float, typer.Option(help="Parameters, e.g. 175e9.")] = 175e9,
    tokens: Annotated[float, typer.Option(help="Training tokens, e.g. 300e9.")] = 300e9,
    gpus: Annotated[int, typer.Option(min=1, help="GPUs, data parallel.")] = 1024,
    gpu: Annotated[str, typer.Option(help="h100, h200, a100 or v100.")] = "h100",
    zero: Annotated[
        str, typer.Option(help="Sharding: 0 (replicated), 1, 2, 3 (ZeRO stages) or fsdp.")
    ] = "fsdp",
    shape: Annotated[
        str | None,
        typer.Option(help="A named shape (tiny, small, 350m, gpt3-175b); default: from --params."),
    ] = None,
    seq_len: Annotated[int, typer.Option(min=1, help="Context length.")] = 2048,
    micro_batch: Annotated[int, typer.Option(min=1, help="Sequences a GPU a step.")] = 1,
    mfu: Annotated[float, typer.Option(help="Model FLOPs utilisation assumed.")] = 0.4,
    price: Annotated[
        float | None, typer.Option(help="US dollars a GPU-hour (default: the GPU's assumed).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Memory per GPU, FLOPs, days and cost of training a model (docs/llm.md)."""
    from loopline.llm.configs import CONFIGS, named, shape_for
    from loopline.llm.plan import plan

    if zero not in ZERO:
        raise typer.BadParameter(f"--zero must be one of {', '.join(ZERO)}.")
    if shape is not None:
        model = named(shape, seq_len=seq_len)
    else:
        near = [c for c in CONFIGS.values() if abs(c.params() - params) <= 0.02 * params]
        model = near[0] if near else shape_for(params, seq_len=seq_len)
    planned = plan(
        shape=model, params=params, tokens=tokens, gpus=gpus, gpu=gpu,
        sharding=ZERO[zero], micro_batch=micro_batch, mfu=mfu, price_per_hour=price,  # type: ignore[arg-type]
    )  # fmt: skip
    show_record(planned.summary(), as_json=as_json)


def train_llm(
    config: Annotated[Path, typer.Option(help="The run's settings (TOML, docs/llm.md).")],
    processes: Annotated[
        int | None, typer.Option(min=1, help="Workers (default: one per GPU, else 2 CPU).")
    ] = None,
    max_restarts: Annotated[int, typer.Option(min=0, help="torchrun restarts.")] = 3,
    registry: RegistryOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Train a language model with FSDP2 under torchrun (resuming from its checkpoints),
    track it in MLflow, write its HTML report and register it."""
    from loopline.llm.pipeline import train_and_register
    from loopline.registry import Registry

    trained = train_and_register(
        config,
        registry=Registry(registry) if registry else None,
        processes=processes,
        max_restarts=max_restarts,
    )
    show_record(trained.summary, as_json=as_json)


def demo_llm_train(
    out: Annotated[Path, typer.Option(help="The run, its settings and report.")] = Path(
        ".loopline/llm-demo"
    ),
    shape: Annotated[str, typer.Option(help="A named shape (tiny, small).")] = "small",
    steps: Annotated[int, typer.Option(min=10, help="Training steps.")] = 240,
    seq_len: Annotated[int, typer.Option(min=8, help="Context length.")] = 256,
    vocab_size: Annotated[int, typer.Option(help="BPE vocabulary.")] = 4096,
    registry: RegistryOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Train a small model on Shakespeare with FSDP2 on 2 CPU processes, kill a rank
    mid-run and resume, register the model and write the report (a few minutes)."""
    from loopline.llm.demo import run
    from loopline.registry import Registry

    summary = run(
        out, shape=shape, steps=steps, seq_len=seq_len, vocab_size=vocab_size,
        registry=Registry(registry) if registry else None,
        say=lambda line: typer.echo(line, err=True),
    )  # fmt: skip
    show_record(summary, as_json=as_json)


def register(verbs: Verbs) -> None:
    verbs.plan.command("llm")(plan_llm)
    verbs.train.command("llm")(train_llm)
    verbs.demo.command("llm-train")(demo_llm_train)
