"""Planning a training run before it runs: memory per GPU, FLOPs, time and cost.

Memory per GPU for mixed-precision Adam, data parallel over ``N`` GPUs, ``P`` parameters
(the ZeRO paper, Rajbhandari et al. 2020, section 3 and figure 1): 2P bytes of 16-bit
weights, 2P of 16-bit gradients, and K * P of optimizer state with K = 12 (fp32 master
weights, momentum and variance). ZeRO-1 shards the optimizer state over the N GPUs,
ZeRO-2 the gradients too, ZeRO-3 the weights too; FSDP full sharding keeps the same
shards. Those are the paper's model states. A fully sharded step also holds the layers
it gathers whole, the one computing and the one prefetched, each as 16-bit weights and
gradients; the plan adds them to ZeRO-3 and FSDP alike.

Activations a layer (Korthikanti et al. 2022, "Reducing Activation Recomputation in
Large Transformer Models", section 4.1, no tensor parallelism): s * b * h * (34 + 5 * a
* s / h) bytes for sequence length s, micro-batch b, width h, a heads. A fused attention
kernel (FlashAttention) keeps no a * s * s score matrices: 34 * s * b * h. With full
activation checkpointing a layer keeps only its 16-bit input, 2 * s * b * h, and one
layer's activations are rebuilt at a time during the backward pass. The loss's logits
add 4 * s * b * V bytes (fp32).

FLOPs: 6 N D for N parameters and D tokens (Kaplan et al. 2020), what GPT-3's paper
reports (Brown et al. 2020, table D.1: 3.14e23 for 175B parameters and 300B tokens).
Time at a stated model FLOPs utilisation (MFU) of the GPUs' dense 16-bit peak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from loopline.exceptions import ConfigError
from loopline.llm.configs import ModelConfig

GIB = 1024**3
Sharding = Literal["none", "zero1", "zero2", "zero3", "fsdp"]
SHARDINGS: tuple[Sharding, ...] = ("none", "zero1", "zero2", "zero3", "fsdp")
OPTIMIZER_BYTES = 12  # per parameter: fp32 master weights, Adam's momentum and variance


@dataclass(frozen=True)
class Gpu:
    """An accelerator as the planner sees it. ``price_per_hour``: an assumed on-demand
    price in US dollars (set your own: ``--price``)."""

    name: str
    peak_tflops: float  # dense bf16/fp16 tensor FLOPs, the vendor's datasheet
    memory_gib: float
    price_per_hour: float


# peaks from NVIDIA's datasheets (dense, without sparsity); memory as sold
GPUS = {
    "h100": Gpu("NVIDIA H100 SXM", 989.0, 80 * 1e9 / GIB, 3.0),
    "h200": Gpu("NVIDIA H200 SXM", 989.0, 141 * 1e9 / GIB, 4.0),
    "a100": Gpu("NVIDIA A100 SXM 80GB", 312.0, 80 * 1e9 / GIB, 1.8),
    "v100": Gpu("NVIDIA V100 SXM2 32GB", 125.0, 32 * 1e9 / GIB, 0.9),
}


def state_bytes(params: float, gpus: int, sharding: Sharding) -> dict[str, float]:
    """Weights, gradients and optimizer state per GPU, in bytes (see the module)."""
    if gpus < 1:
        raise ConfigError("gpus must be >= 1.")
    n = gpus
    weights, grads, optimizer = 2 * params, 2 * params, OPTIMIZER_BYTES * params
    if sharding in ("zero1", "zero2", "zero3", "fsdp"):
        optimizer /= n
    if sharding in ("zero2", "zero3", "fsdp"):
        grads /= n
    if sharding in ("zero3", "fsdp"):
        weights /= n
    return {"weights": weights, "gradients": grads, "optimizer": optimizer}


def activation_bytes(
    shape: ModelConfig, micro_batch: int, *, checkpointing: bool, fused_attention: bool = True
) -> float:
    """Activations kept for the backward pass, per GPU, in bytes (see the module)."""
    s, b, h, a = shape.seq_len, micro_batch, shape.d_model, shape.n_heads
    per_layer = s * b * h * 34 + (0 if fused_attention else 5 * a * s * s * b)
    logits = 4 * s * b * shape.vocab_size
    if checkpointing:
        return shape.n_layers * 2 * s * b * h + per_layer + logits
    return shape.n_layers * per_layer + logits


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A training run, planned."""

    shape: ModelConfig
    params: float
    tokens: float
    gpus: int
    gpu: Gpu
    sharding: Sharding
    micro_batch: int
    mfu: float
    price_per_hour: float

    @property
    def training_flops(self) -> float:
        return 6 * self.params * self.tokens

    def memory(self, *, checkpointing: bool) -> dict[str, float]:
        """Bytes per GPU by part, and their total."""
        parts = state_bytes(self.params, self.gpus, self.sharding)
        if self.sharding in ("zero3", "fsdp"):  # two layers whole: 16-bit weights, grads
            parts["gathered_layers"] = 2 * 2 * 2 * self.shape.layer_params()
        parts["activations"] = activation_bytes(
            self.shape, self.micro_batch, checkpointing=checkpointing
        )
        parts["total"] = sum(parts.values())
        return parts

    @property
    def seconds(self) -> float:
        return self.training_flops / (self.gpus * self.gpu.peak_tflops * 1e12 * self.mfu)

    def summary(self) -> dict[str, Any]:
        """The plan as one JSON-able record (memory in GiB)."""
        plain, checkpointed = self.memory(checkpointing=False), self.memory(checkpointing=True)
        gpu_hours = self.gpus * self.seconds / 3600
        per_gpu = checkpointed["total"] / GIB
        return {
            "params": self.params,
            "shape_params": self.shape.params(),
            "shape": self.shape.to_dict(),
            "tokens": self.tokens,
            "gpus": self.gpus,
            "gpu": self.gpu.name,
            "sharding": self.sharding,
            "micro_batch": self.micro_batch,
            "training_flops": self.training_flops,
            "training_flops_with_attention": self.shape.flops_per_token() * self.tokens,
            "memory_per_gpu_gib": round(per_gpu, 2),
            "memory_per_gpu_gib_without_checkpointing": round(plain["total"] / GIB, 2),
            "memory_gib": {k: round(v / GIB, 3) for k, v in checkpointed.items()},
            "activations_gib_without_checkpointing": round(plain["activations"] / GIB, 3),
            "gpu_memory_gib": round(self.gpu.memory_gib, 1),
            "fits": per_gpu <= self.gpu.memory_gib,
            "mfu": self.mfu,
            "days": round(self.seconds / 86_400, 2),
            "gpu_hours": round(gpu_hours),
            "price_per_gpu_hour": self.price_per_hour,
            "cost_usd": round(gpu_hours * self.price_per_hour),
        }


def plan(
    *,
    shape: ModelConfig,
    tokens: float,
    gpus: int,
    gpu: str = "h100",
    sharding: Sharding = "fsdp",
    micro_batch: int = 1,
    mfu: float = 0.4,
    params: float | None = None,
    price_per_hour: float | None = None,
) -> Plan:
    """Plan training ``shape`` (``params``: the count to plan for, default the shape's)
    on ``tokens`` tokens over ``gpus`` GPUs of kind ``gpu``."""
    if gpu not in GPUS:
        raise ConfigError(f"No GPU {gpu!r}; known: {', '.join(GPUS)}.")
    if sharding not in SHARDINGS:
        raise ConfigError(f"No sharding {sharding!r}; known: {', '.join(SHARDINGS)}.")
    if not 0 < mfu <= 1 or tokens <= 0 or micro_batch < 1 or gpus < 1:
        raise ConfigError("mfu in (0, 1], tokens > 0, micro_batch >= 1, gpus >= 1.")
    kind = GPUS[gpu]
    return Plan(
        shape=shape,
        params=float(params if params is not None else shape.params()),
        tokens=tokens,
        gpus=gpus,
        gpu=kind,
        sharding=sharding,
        micro_batch=micro_batch,
        mfu=mfu,
        price_per_hour=kind.price_per_hour if price_per_hour is None else price_per_hour,
    )
