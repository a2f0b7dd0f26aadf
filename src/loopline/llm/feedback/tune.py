"""A LoRA adapter trained on user feedback: KTO on thumbs up or down, DPO on pairs.

TRL's trainers do the optimisation; this module owns what they leave open. The
reference policy is the model with its adapter disabled (TRL's path when it wraps the
model with ``peft_config`` itself: no second copy of the weights). The run is
deterministic given the seed (TRL seeds before it creates the adapter), runs on the
CPU in float32 (TRL's defaults of bfloat16 and gradient checkpointing are turned
off: a 270M model's activations are small, recomputing them is not), and writes
nothing outside ``out``: no hub, no report integrations, no checkpoints, the
trainer's output folder a temporary one.

Feedback records are the standard (not conversational) format: prompts already in
the model's chat format, as plain strings. The tokenizer adds ``<bos>`` itself.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from transformers.trainer_callback import PrinterCallback

from loopline.exceptions import ConfigError
from loopline.llm.engine.adapters import FILES as ADAPTER_FILES

if TYPE_CHECKING:
    from trl.trainer.dpo_trainer import DPOTrainer
    from trl.trainer.kto_trainer import KTOTrainer

Method = Literal["kto", "dpo"]
Progress = Callable[[int, int, Mapping[str, float]], None]
GEMMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MIN_KTO_EXAMPLES = 4
FIELDS: dict[Method, tuple[tuple[str, type], ...]] = {
    "kto": (("prompt", str), ("completion", str), ("label", bool)),
    "dpo": (("prompt", str), ("chosen", str), ("rejected", str)),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class TuneSettings:
    """How to train the adapter.

    Args:
        method: ``kto`` (records with a ``label``) or ``dpo`` (``chosen``/``rejected`` pairs).
        rank, alpha, dropout: LoRA's rank, scale numerator (the update is scaled by
            ``alpha / rank``) and dropout on the adapter's input.
        target_modules: The projections that get an adapter (default: all seven).
        epochs: Passes over the records; ``max_steps``, when set, wins.
        batch_size: Records a step (KTO needs two or more: its KL estimate pairs each
            prompt with another record's completion in the batch).
        max_length: Tokens of prompt and completion together; longer ones are cut.
        beta: How far from the reference policy the loss lets the model move (higher:
            less far).
    """

    method: Method
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = GEMMA_PROJECTIONS
    learning_rate: float = 5e-5
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 4
    max_length: int = 512
    beta: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "method": (self.method in FIELDS, "'kto' or 'dpo'"),
            "rank": (self.rank >= 1, "a positive integer"),
            "alpha": (self.alpha > 0, "positive"),
            "dropout": (0 <= self.dropout < 1, "in [0, 1)"),
            "target_modules": (
                bool(self.target_modules) and set(self.target_modules) <= set(GEMMA_PROJECTIONS),
                f"a non-empty tuple of {', '.join(GEMMA_PROJECTIONS)}",
            ),
            "learning_rate": (self.learning_rate > 0, "positive"),
            "epochs": (self.epochs > 0, "positive"),
            "max_steps": (self.max_steps is None or self.max_steps >= 1, "None or at least 1"),
            "batch_size": (
                self.batch_size >= (2 if self.method == "kto" else 1),
                "at least 2 for KTO (its KL estimate needs a second record), 1 for DPO",
            ),
            "max_length": (self.max_length >= 2, "at least 2 tokens"),
            "beta": (self.beta > 0, "positive"),
            "seed": (self.seed >= 0, "a non-negative integer"),
        }
        for name, (ok, want) in checks.items():
            if not ok:
                raise ConfigError(
                    f"The {name!r} of TuneSettings must be {want}. Got {getattr(self, name)!r}."
                )


@dataclass(frozen=True, kw_only=True, slots=True)
class TuneResult:
    """What a :func:`tune` run did.

    Args:
        steps: Optimiser steps taken.
        seconds: Wall time of the training loop (data preparation apart).
        losses: The loss of each step.
        metrics: The last step's metrics as TRL logs them (``rewards/margins``,
            ``rewards/chosen``, ``logps/rejected``, KTO's ``kl``, ...).
        examples: Records trained on (TRL drops those whose prompt fills ``max_length``).
    """

    method: Method
    steps: int
    seconds: float
    losses: tuple[float, ...]
    metrics: Mapping[str, float]
    examples: int


def tune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    records: Iterable[Mapping[str, Any]],
    settings: TuneSettings,
    out: Path,
    *,
    progress: Progress | None = None,
) -> TuneResult:
    """Train a LoRA adapter on feedback and save it (only it) into ``out``.

    The model comes back as it was (same modules, weights, mode and ``requires_grad``
    flags); the adapter lives in ``out`` as ``adapter_config.json`` and
    ``adapter_model.safetensors``, for ``peft.PeftModel.from_pretrained(model, out)``.

    Args:
        model: A causal LM, e.g. :func:`loopline.llm.feedback.hf.hf_model`'s.
        tokenizer: Its tokenizer, with a pad token.
        records: KTO: ``{"prompt", "completion", "label": bool}``; DPO:
            ``{"prompt", "chosen", "rejected"}``; every text a plain string.
        progress: Called after each step with ``(step, total_steps, logs)``.

    Raises:
        ConfigError: Records of the wrong shape, KTO feedback with fewer than four
            records or only one label, a DPO pair whose two answers are the same.
    """
    rows = _rows(records, settings)
    log = _Log(progress)
    with (
        tempfile.TemporaryDirectory(prefix="loopline-tune-") as scratch,
        _quiet(),
        _restored(model),
    ):
        trainer = _trainer(model, tokenizer, rows, settings, Path(scratch), log)
        trainer.remove_callback(PrinterCallback)  # prints every log: ``progress`` is the way
        examples = len(trainer.train_dataset)  # type: ignore[arg-type]
        if examples == 0:
            raise ConfigError(
                f"Every prompt fills max_length={settings.max_length} tokens, leaving no "
                "completion to learn from: raise max_length or shorten the prompts."
            )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        _save_adapter(trainer.model, Path(scratch) / "adapter", out)
    return TuneResult(
        method=settings.method,
        steps=trainer.state.global_step,
        seconds=seconds,
        losses=tuple(log.losses),
        metrics=log.last,
        examples=examples,
    )


def _rows(records: Iterable[Mapping[str, Any]], settings: TuneSettings) -> list[dict[str, Any]]:
    """The records checked and copied; KTO's shuffled with the seed, since its trainer
    reads them in order (feedback arrives in time order: one batch, one afternoon)."""
    fields = FIELDS[settings.method]
    rows = []
    for i, record in enumerate(records):
        if not all(isinstance(record.get(name), kind) for name, kind in fields):
            want = ", ".join(f"{name!r} ({kind.__name__})" for name, kind in fields)
            raise ConfigError(
                f"{settings.method.upper()} record {i} needs {want}. Got {record!r:.200}."
            )
        if settings.method == "dpo" and record["chosen"] == record["rejected"]:
            raise ConfigError(
                f"DPO record {i} has the same 'chosen' and 'rejected' answer: a pair must "
                "differ to say which is preferred. Drop it or fix the pairing."
            )
        rows.append({name: record[name] for name, _ in fields})
    if settings.method == "dpo":
        if not rows:
            raise ConfigError("DPO needs at least one 'chosen'/'rejected' pair. Got none.")
        return rows
    labels = {row["label"] for row in rows}
    if len(rows) < MIN_KTO_EXAMPLES or len(labels) < 2:
        raise ConfigError(
            f"KTO needs at least {MIN_KTO_EXAMPLES} records with both labels (thumbs up "
            f"and down). Got {len(rows)} records, labels {sorted(labels)}."
        )
    random.Random(settings.seed).shuffle(rows)
    return rows


def _trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[dict[str, Any]],
    settings: TuneSettings,
    scratch: Path,
    log: _Log,
) -> KTOTrainer | DPOTrainer:
    from datasets import Dataset  # type: ignore[import-untyped]
    from peft import LoraConfig

    args: dict[str, Any] = {
        "output_dir": str(scratch / "trainer"),
        "per_device_train_batch_size": settings.batch_size,
        "learning_rate": settings.learning_rate,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps if settings.max_steps is not None else -1,
        "max_length": settings.max_length,
        "beta": settings.beta,
        "seed": settings.seed,
        "data_seed": settings.seed,
        "use_cpu": True,
        "bf16": False,
        "activation_checkpointing": False,
        "dataloader_pin_memory": False,  # no accelerator to pin for (and torch warns)
        "logging_strategy": "steps",
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,  # the caller's ``progress`` shows it, if anything does
    }
    common: dict[str, Any] = {
        "model": model,
        "train_dataset": Dataset.from_list(rows),
        "processing_class": tokenizer,
        # TRL wraps the model itself; its reference policy is then the adapter disabled
        "peft_config": LoraConfig(
            r=settings.rank,
            lora_alpha=settings.alpha,
            lora_dropout=settings.dropout,
            target_modules=list(settings.target_modules),
            task_type="CAUSAL_LM",
        ),
        "callbacks": [log],
    }
    if settings.method == "kto":
        from trl.trainer.kto_config import KTOConfig
        from trl.trainer.kto_trainer import KTOTrainer

        return KTOTrainer(args=KTOConfig(**args), **common)
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer

    return DPOTrainer(args=DPOConfig(**args), **common)


def _save_adapter(peft_model: Any, staging: Path, out: Path) -> None:
    """The adapter's two files into ``out``; PEFT's model card (a README) is left out."""
    peft_model.save_pretrained(str(staging))
    out.mkdir(parents=True, exist_ok=True)
    for name in ADAPTER_FILES:
        shutil.move(staging / name, out / name)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence what is noise to a caller: ``datasets``' progress bars over a few
    records, and TRL asking ``transformers`` 5 for ``is_gradient_checkpointing``,
    which warns that it is deprecated. TRL's own warnings (unbalanced labels, prompts
    cut) still come through."""
    from datasets.utils import (  # type: ignore[import-untyped]
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    bars = not are_progress_bars_disabled()
    disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", r"`is_gradient_checkpointing` is deprecated", FutureWarning
            )
            yield
    finally:
        if bars:
            enable_progress_bars()


@contextmanager
def _restored(model: PreTrainedModel) -> Iterator[None]:
    """Put the model back as it was, however training ends: its modules (PEFT swaps
    each target projection for a LoRA layer around it), the attributes PEFT and TRL
    set on the instance (``peft_config``, ``model_tags``, a ``forward`` with a fused
    head computing log-probabilities in tiles), its config (the trainer turns
    ``use_cache`` off), its parameters' ``requires_grad`` (PEFT freezes them) and its
    mode."""
    children = [(parent, name, child) for parent in model.modules()
                for name, child in parent.named_children()]  # fmt: skip
    attributes, config = set(vars(model)), dict(vars(model.config))
    grads = [p.requires_grad for p in model.parameters()]
    training = model.training
    try:
        yield
    finally:
        for parent, name, child in children:
            setattr(parent, name, child)
        for name in set(vars(model)) - attributes:
            delattr(model, name)
        for name, value in config.items():
            if getattr(model.config, name, None) != value:
                setattr(model.config, name, value)
        for p, grad in zip(model.parameters(), grads, strict=True):
            p.requires_grad_(grad)
        model.train(training)


class _Log(TrainerCallback):
    """Each step's loss and metrics, passed on to the caller's ``progress``."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.losses: list[float] = []
        self.last: dict[str, float] = {}

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not logs or "loss" not in logs:  # the run's summary (train_runtime, ...) apart
            return
        self.losses.append(float(logs["loss"]))
        self.last = {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}
        if self.progress is not None:
            self.progress(state.global_step, state.max_steps, self.last)
