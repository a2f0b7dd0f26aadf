"""A training run's settings, read from a TOML file (``loopline train llm --config``).

```toml
[model]
name = "llm"              # the registered model's name
shape = "tiny"            # a named shape (loopline.llm.configs); the vocabulary is the tokenizer's
seq_len = 128

[data]
folder = ".loopline/llm/shards"
vocab_size = 1024

[train]
steps = 200
global_batch = 16         # windows a step, over all ranks
micro_batch = 4           # windows a forward pass on one rank (the rest: accumulation)
lr = 3e-3
warmup = 20
min_lr_ratio = 0.1        # the cosine ends at lr * this
weight_decay = 0.1
clip = 1.0
seed = 0
precision = "bf16"        # bf16 weights and activations, fp32 reductions; or "fp32"
activation_checkpointing = true
reshard_after_forward = true  # false: gathered once a step (more memory, fewer all-gathers)
compile = false
checkpoint_every = 20
async_checkpoints = false  # true: written by a background thread while training goes on
eval_every = 50
eval_batches = 8
peak_tflops = 989         # a device's dense peak for MFU (default: known GPUs; none on a CPU)
out = ".loopline/llm/run"
```
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from loopline.exceptions import ConfigError


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    name: str = "llm"
    shape: str = "tiny"
    seq_len: int = 128
    data: Path = Path(".loopline/llm/shards")
    vocab_size: int = 1024
    steps: int = 200
    global_batch: int = 16
    micro_batch: int = 4
    lr: float = 3e-3
    warmup: int = 20
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    clip: float = 1.0
    seed: int = 0
    precision: Literal["bf16", "fp32"] = "bf16"
    activation_checkpointing: bool = True
    reshard_after_forward: bool = True
    compile: bool = False
    checkpoint_every: int = 20
    async_checkpoints: bool = False
    eval_every: int = 50
    eval_batches: int = 8
    peak_tflops: float | None = None
    out: Path = Path(".loopline/llm/run")

    def __post_init__(self) -> None:
        if self.precision not in ("bf16", "fp32"):
            raise ConfigError(f"precision must be bf16 or fp32, not {self.precision!r}.")
        if min(self.steps, self.global_batch, self.micro_batch, self.seq_len) < 1:
            raise ConfigError("steps, global_batch, micro_batch and seq_len must be >= 1.")
        if not 0 <= self.min_lr_ratio <= 1 or self.lr <= 0:
            raise ConfigError("lr > 0 and min_lr_ratio in [0, 1].")

    def per_rank(self, world: int) -> tuple[int, int]:
        """(windows a rank takes a step, micro-batches it splits them into)."""
        if self.global_batch % world:
            raise ConfigError(
                f"global_batch {self.global_batch} does not split over {world} ranks."
            )
        share = self.global_batch // world
        if share % self.micro_batch:
            raise ConfigError(
                f"{share} windows a rank do not split into micro-batches of {self.micro_batch}."
            )
        return share, share // self.micro_batch

    def lr_at(self, step: int) -> float:
        """Linear warmup to ``lr`` over ``warmup`` steps, then a cosine down to
        ``lr * min_lr_ratio`` at the last step (``step`` counts from 0)."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        span = max(1, self.steps - self.warmup - 1)
        progress = min(1.0, (step - self.warmup) / span)
        floor = self.lr * self.min_lr_ratio
        return floor + (self.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def load(path: Path, **overrides: Any) -> TrainSettings:
    """Settings from a TOML file (sections ``model``, ``data``, ``train``), with
    ``overrides`` on top."""
    raw = tomllib.loads(path.read_text())
    flat: dict[str, Any] = {}
    for section in ("model", "data", "train"):
        flat.update(raw.pop(section, {}))
    if raw:
        raise ConfigError(f"{path}: unknown sections {sorted(raw)}.")
    if "folder" in flat:
        flat["data"] = flat.pop("folder")
    known = {f.name for f in fields(TrainSettings)}
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown settings {unknown}.")
    flat.update(overrides)
    for name in ("data", "out"):
        if name in flat:
            flat[name] = Path(flat[name])
    return TrainSettings(**flat)
