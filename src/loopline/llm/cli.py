"""The LLM commands, registered into the ``loopline`` verbs (entry point
``loopline.applications``): ``plan llm-train``, ``plan llm``, ``train llm``, ``serve
llm``. PyTorch is imported inside the commands, never here."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from loopline.cli import Verbs, show_record
from loopline.cli_models import RegistryOpt
from loopline.cli_options import DecisionsOpt, EventsOpt, HostOpt, JsonOpt, KeysOpt, PortOpt

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
    as_json: JsonOpt = False,
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


def plan_llm_serving(
    tps: Annotated[float, typer.Option(help="Mean output tokens a second over a day.")] = 1000.0,
    peak: Annotated[float, typer.Option(help="The peak's multiple of the mean.")] = 3.0,
    regions: Annotated[int, typer.Option(help="Regions, traffic split evenly.")] = 1,
    peak_hours: Annotated[float, typer.Option(help="Hours a day at the peak.")] = 4.0,
    gpu: Annotated[str, typer.Option(help="The GPU self-hosting is computed for.")] = "h100",
    mfu: Annotated[float, typer.Option(help="Model FLOPs utilisation assumed on it.")] = 0.2,
    params: Annotated[float, typer.Option(help="The served model's parameters.")] = 268e6,
    input_ratio: Annotated[
        float, typer.Option(help="Input (prompt) tokens an output token.")
    ] = 2.0,
    finetune_tokens: Annotated[
        float, typer.Option(help="Fine-tuning tokens a month, costed by the training planner.")
    ] = 0.0,
    prices: Annotated[
        Path | None, typer.Option(help="A TOML file of prices overriding the defaults.")
    ] = None,
    results: Annotated[
        Path | None, typer.Option(help="Saved benchmark results (default: benchmarks/results).")
    ] = None,
    as_json: JsonOpt = False,
    html: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
) -> None:
    """Serving capacity and cost for a load in output tokens a second, from `loopline bench
    llm-serve`'s saved result, and the hosted API against self-hosting (docs/planning.md)."""
    from loopline.exceptions import ConfigError
    from loopline.llm.serve_plan import Serving, workload_for
    from loopline.ops.plan_cli import inputs_from_options, run_plan, show_plan

    if not 0 < mfu <= 1 or params <= 0 or input_ratio < 0 or finetune_tokens < 0:
        raise typer.BadParameter(
            "--mfu in (0, 1], --params > 0, --input-ratio and --finetune-tokens >= 0."
        )
    inputs = inputs_from_options(
        rate=tps, unit="output tokens", peak=peak, latency_ms=1000.0, retention_days=0.0,
        regions=regions, peak_hours=peak_hours, prices=prices, results=results,
        cache_hit_rate=0.0, flag="--tps",
    )  # fmt: skip
    serving = Serving(
        params=params, gpu=gpu, mfu=mfu, input_ratio=input_ratio, finetune_tokens=finetune_tokens
    )
    try:
        made = run_plan("llm", workload_for(serving), inputs)
    except ConfigError as e:
        raise typer.BadParameter(str(e)) from e
    show_plan(made, as_json=as_json, html=html, title="LLM serving")


def train_llm(
    config: Annotated[Path, typer.Option(help="The run's settings (TOML, docs/llm.md).")],
    processes: Annotated[
        int | None, typer.Option(min=1, help="Workers (default: one per GPU, else 2 CPU).")
    ] = None,
    max_restarts: Annotated[int, typer.Option(min=0, help="torchrun restarts.")] = 3,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
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


def train_llm_feedback(
    state: Annotated[Path, typer.Option(help="The server's state folder.")] = Path(".loopline/llm"),
    registry: RegistryOpt = None,
    name: Annotated[str, typer.Option(help="The adapter's registry name.")] = (
        "gemma-3-270m-feedback"
    ),
    method: Annotated[
        str, typer.Option(help="kto (ratings), dpo (preference pairs) or auto.")
    ] = "auto",
    steps: Annotated[
        int | None, typer.Option(min=1, help="Training steps (default: one pass).")
    ] = None,
    learning_rate: Annotated[float, typer.Option(min=0.0, help="AdamW's rate.")] = 5e-5,
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 8,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a LoRA adapter of Gemma 3 270M on the feedback its server logged (TRL
    KTO for thumbs up/down, DPO for preference pairs) and register it."""
    from loopline.llm.feedback.train import FeedbackOptions, train_feedback

    if method not in ("auto", "kto", "dpo"):
        raise typer.BadParameter("kto, dpo or auto", param_hint="--method")
    options = FeedbackOptions(
        state=state, registry=registry, name=name, method=method,  # type: ignore[arg-type]
        steps=steps, learning_rate=learning_rate, rank=rank,
    )  # fmt: skip
    with _bar("fine-tuning") as progress:
        summary = train_feedback(options, progress)
    show_record(summary, as_json=as_json)


@contextmanager
def _bar(what: str) -> Iterator[Callable[[int, int, Mapping[str, float]], None]]:
    """A progress bar on stderr, advanced with (step, total, logs)."""
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(what, total=None)

        def advance(step: int, total: int, logs: Mapping[str, float]) -> None:
            loss = logs.get("loss")
            shown = what if loss is None else f"{what} (loss {loss:.3f})"
            bar.update(task, completed=step, total=total, description=shown)

        yield advance


def demo_llm_train(
    out: Annotated[Path, typer.Option(help="The run, its settings and report.")] = Path(
        ".loopline/llm-demo"
    ),
    shape: Annotated[str, typer.Option(help="A named shape (tiny, small).")] = "small",
    steps: Annotated[int, typer.Option(min=10, help="Training steps.")] = 240,
    seq_len: Annotated[int, typer.Option(min=8, help="Context length.")] = 256,
    vocab_size: Annotated[int, typer.Option(help="BPE vocabulary.")] = 4096,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
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


def demo_llm(
    out: Annotated[Path, typer.Option(help="Its state, registry and report.")] = Path(
        ".loopline/llm-feedback-demo"
    ),
    train_prompts: Annotated[int, typer.Option(min=8, help="Questions for feedback.")] = 64,
    test_prompts: Annotated[int, typer.Option(min=4, help="Held-out questions (A/B).")] = 32,
    max_tokens: Annotated[int, typer.Option(min=8, help="Tokens an answer.")] = 48,
    steps: Annotated[
        int | None, typer.Option(min=1, help="Fine-tuning steps (default: one pass).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve Gemma 3 270M, stream, collect a simulated user's feedback, fine-tune a LoRA
    adapter with DPO, A/B it against the base, promote it; an HTML report (CPU, minutes)."""
    from loopline.llm.feedback.demo import run

    summary = run(
        out, train_prompts=train_prompts, test_prompts=test_prompts, max_tokens=max_tokens,
        steps=steps, say=lambda line: typer.echo(line, err=True),
    )  # fmt: skip
    show_record(summary, as_json=as_json)


def serve_llm(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    state: Annotated[Path, typer.Option(help="Event log, prediction log, API keys.")] = Path(
        ".loopline/llm"
    ),
    registry: RegistryOpt = None,
    base: Annotated[
        str, typer.Option(help="gemma-3-270m (its GGUF file), or a registered model's name.")
    ] = "gemma-3-270m",
    adapter: Annotated[
        str | None, typer.Option(help="A registered LoRA adapter's name: its champion is served.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="The model name requests are routed by (default: BASE).")
    ] = None,
    keys: KeysOpt = None,
    events: EventsOpt = None,
    decisions: DecisionsOpt = None,
    tokens_per_minute: Annotated[
        int, typer.Option(min=0, help="Each API key's token budget a minute (0: none).")
    ] = 0,
    max_seqs: Annotated[int, typer.Option(min=1, help="Sequences decoded together.")] = 32,
    num_blocks: Annotated[int, typer.Option(min=16, help="KV-cache blocks of 16 tokens.")] = 2048,
    speculate: Annotated[
        int, typer.Option(min=0, help="Prompt-lookup draft tokens a step (0: off).")
    ] = 0,
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or int8 (weights).")] = "float32",
) -> None:
    """Serve a language model with an OpenAI-compatible API (POST /v1/completions,
    /v1/chat/completions, /v1/feedback; GET /v1/models), streamed as Server-Sent Events."""
    from loopline.llm.server.models import EngineOptions
    from loopline.llm.server.service import ServeOptions
    from loopline.llm.server.service import serve as run

    engine = EngineOptions(
        num_blocks=num_blocks, max_seqs=max_seqs, speculate=speculate, dtype=dtype
    )
    options = ServeOptions(
        state=state, registry=registry, base=base, adapter=adapter, name=name, keys=keys,
        events=events, decisions=decisions, tokens_per_minute=tokens_per_minute,
        engine=engine,
    )  # fmt: skip
    run(options, host=host, port=port)


def register(verbs: Verbs) -> None:
    verbs.plan.command("llm-train")(plan_llm)
    verbs.plan.command("llm")(plan_llm_serving)
    verbs.train.command("llm")(train_llm)
    verbs.serve.command("llm")(serve_llm)
    verbs.train.command("llm-feedback")(train_llm_feedback)
    verbs.demo.command("llm-train")(demo_llm_train)
    verbs.demo.command("llm")(demo_llm)
