"""``loopline plan llm``: serving capacity for a load in output tokens a second, from the
saved result of ``loopline bench llm-serve``, and the hosted API against self-hosting.

The engine (continuous batching, CPU) is one role, sized by throughput (a batching engine
is not an M/M/c queue): an instance is the benchmark's machine, its tokens a second the
measured ``continuous_tokens_per_s``; the per-core figure is that over the machine's cores.

Hosted against self-hosted, per month, for ``T`` output tokens (each with
``input_ratio`` input tokens):

* hosted: ``T x (input_ratio x input price + output price) / 1e6``, the price table's
  per-million-token prices (``hosted_model``);
* self-hosted: the fleet a load needs (``ceil(peak per region / (per unit x 0.7)) + 1``
  units a region) x the unit's price x hours a month, for two units: the CPU instance as
  measured, and one GPU whose tokens a second are COMPUTED, not measured (no GPU on the
  benchmark machine): ``peak FLOPs x mfu / (2 x params x (1 + input_ratio))``, two FLOPs
  a parameter a token (the forward pass), peak FLOPs from the training planner's GPU table
  (:data:`loopline.llm.plan.GPUS`) and a stated ``mfu``;
* break-even: the fewest tokens a month from which self-hosting costs no more than the
  API, found over fleet sizes (each fleet covers loads up to its capacity); none where one
  more unit costs more a token than the API at full use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from loopline.exceptions import ConfigError
from loopline.ops.plan import Lever, Load, Role, Workload
from loopline.ops.plan_cli import PlanInputs
from loopline.ops.prices import Prices
from loopline.ops.results import Saved, load

KV_GIB = 2.0  # stated: the paged KV cache an instance keeps beside the weights
UTILISATION = 0.7


@dataclass(frozen=True, kw_only=True)
class Serving:
    """The stated inputs of the hosted/self-hosted comparison."""

    params: float = 268e6  # Gemma 3 270M, the model llm-serve runs
    gpu: str = "h100"
    mfu: float = 0.2
    input_ratio: float = 2.0
    finetune_tokens: float = 0.0  # fine-tuning tokens a month (0: none)


def fleet_cost(
    rate: float, *, unit_tps: float, unit_hourly: float, load: Load, prices: Prices
) -> float:
    """Monthly cost of the units that serve ``rate`` mean output tokens/s at the load's
    peak, ``UTILISATION`` busy at most, plus one spare a region."""
    per_region = rate * load.peak / load.regions
    units = math.ceil(per_region / (unit_tps * UTILISATION)) + 1
    return units * load.regions * unit_hourly * prices.hours_month


def break_even(
    *, unit_tps: float, unit_hourly: float, hosted_per_token: float, load: Load, prices: Prices
) -> float | None:
    """The fewest output tokens a month from which self-hosting on these units costs no
    more than the API; ``None`` if never (see the module)."""
    month_s = prices.hours_month * 3600
    per_unit = unit_tps * UTILISATION * load.regions / load.peak  # mean tokens/s a unit a region
    # each step adds a unit in every region (their cost) and per_unit * month_s tokens:
    # unless a step's tokens cost less than the API's, the fleet never catches up
    if load.regions * unit_hourly * prices.hours_month / (per_unit * month_s) >= hosted_per_token:
        return None
    k = 1
    while True:
        low, high = (k - 1) * per_unit * month_s, k * per_unit * month_s
        cost = (k + 1) * load.regions * unit_hourly * prices.hours_month
        tokens = max(low, cost / hosted_per_token)
        if tokens <= high:
            return tokens
        k += 1


def gpu_tokens_per_s(serving: Serving) -> float:
    """Output tokens a second one GPU would serve: computed, not measured (the module)."""
    from loopline.llm.plan import GPUS

    if serving.gpu not in GPUS:
        raise ConfigError(f"--gpu: no GPU {serving.gpu!r}; known: {', '.join(GPUS)}.")
    flops = GPUS[serving.gpu].peak_tflops * 1e12 * serving.mfu
    return flops / (2 * serving.params * (1 + serving.input_ratio))


def comparison(
    inputs: PlanInputs, serving: Serving, *, cpu_tps: float, cpu_hourly: float
) -> dict[str, Any]:
    """Hosted against self-hosted (CPU as measured, GPU as computed) at the plan's load."""
    p, ld = inputs.prices, inputs.load
    hosted = (serving.input_ratio * p.hosted_input_per_mtok + p.hosted_output_per_mtok) / 1e6
    tokens = ld.rate * p.hours_month * 3600
    gpu_tps, gpu_hourly = gpu_tokens_per_s(serving), p.gpu(serving.gpu)
    out: dict[str, Any] = {
        "hosted_model": p.hosted_model,
        "hosted_usd_per_million_output_tokens": round(hosted * 1e6, 4),
        "input_tokens_per_output_token": serving.input_ratio,
        "tokens_per_month": tokens,
        "hosted_monthly": round(tokens * hosted, 2),
    }
    for name, tps, hourly, how in (
        ("cpu", cpu_tps, cpu_hourly, "measured (loopline bench llm-serve)"),
        ("gpu", gpu_tps, gpu_hourly, f"computed, not measured: {serving.gpu} at mfu "
         f"{serving.mfu:g}, {serving.params:.3g} parameters"),
    ):  # fmt: skip
        even = break_even(
            unit_tps=tps, unit_hourly=hourly, hosted_per_token=hosted, load=ld, prices=p
        )
        cost = fleet_cost(ld.rate, unit_tps=tps, unit_hourly=hourly, load=ld, prices=p)
        out[name] = {
            "tokens_per_s_a_unit": round(tps, 3),
            "usd_per_hour_a_unit": round(hourly, 4),
            "how": how,
            "self_hosted_monthly": round(cost, 2),
            "break_even_tokens_per_month": None if even is None else round(even),
        }
    if serving.finetune_tokens > 0:
        out["fine_tuning"] = fine_tuning(serving, p)
    return out


def fine_tuning(serving: Serving, prices: Prices) -> dict[str, Any]:
    """A month's fine-tuning on one GPU, from the training planner (6 N D FLOPs at 40 %
    MFU, :func:`loopline.llm.plan.plan`), at the price table's GPU-hour."""
    from loopline.llm.configs import shape_for
    from loopline.llm.plan import plan as plan_training

    run = plan_training(
        shape=shape_for(serving.params), params=serving.params, tokens=serving.finetune_tokens,
        gpus=1, gpu=serving.gpu, mfu=0.4, price_per_hour=prices.gpu(serving.gpu),
    )  # fmt: skip
    summary = run.summary()
    return {
        "tokens_per_month": serving.finetune_tokens,
        "gpu_hours": summary["gpu_hours"],
        "monthly": summary["cost_usd"],
        "how": "computed by loopline.llm.plan (6 N D FLOPs, 40 % MFU), not measured",
    }


def _levers(r: dict[str, Any], continuous: float) -> list[Lever]:
    levers = [
        Lever(
            name="caching",
            note="not measured as throughput: the prefix cache cut the time to first token "
            f"x{r.get('prefix_ttft_speedup', '?')} for a shared ~500-token prompt",
        )
    ]
    quant = r.get("quantization")
    if isinstance(quant, dict) and "fp32" in quant:
        base = float(quant["fp32"]["tokens_per_s_16"])
        for mode in ("bf16", "int8"):
            q = quant.get(mode, {})
            levers.append(
                Lever(
                    name=f"quantization ({mode})",
                    roles=("engine",),
                    throughput=float(q["tokens_per_s_16"]) / base,
                    note=f"decoding 16 sequences: {q['tokens_per_s_16']:.1f} tokens/s against "
                    f"fp32's {base:.1f}; perplexity {q['perplexity']:.2f} against "
                    f"{quant['fp32']['perplexity']:.2f}",
                )
            )
    else:
        levers.append(Lever(name="quantization", note="not measured: run llm-serve in full"))
    static = float(r["static_tokens_per_s"])
    levers.append(
        Lever(
            name="batching (static instead of continuous)",
            roles=("engine",),
            throughput=static / continuous,
            note=f"the plan uses continuous batching ({continuous:g} tokens/s); static "
            f"batching measured {static:g} on the same trace",
        )
    )
    return levers


def workload_for(serving: Serving) -> Any:
    """The provider for ``serving``'s stated inputs."""

    def workload(inputs: PlanInputs) -> Workload:
        saved: Saved = load("llm-serve", inputs.folder)
        tps = saved.figure("continuous_tokens_per_s")
        cores = int(saved.machine.get("affinity") or saved.machine.get("cores") or 1)
        quant = saved.result.get("quantization", {})
        weights = float(quant.get("fp32", {}).get("weight_gib", 1.0)) if quant else 1.0
        engine = Role(
            name="engine",
            per_core=tps / cores,
            on_path=False,
            cores_per_instance=cores,
            max_utilisation=UTILISATION,
            memory_gib=weights + KV_GIB,
            source=f"llm-serve: continuous_tokens_per_s / {cores} cores",
        )
        hourly = cores * inputs.prices.core_hour + engine.memory_gib * inputs.prices.memory_gib_hour
        extras = {"break_even": comparison(inputs, serving, cpu_tps=tps, cpu_hourly=hourly)}
        return Workload(
            roles=[engine],
            levers=_levers(saved.result, tps),
            sources=[saved],
            notes=[
                f"measured on CPU: {saved.result.get('model', '?')}; p50 time per output "
                f"token {saved.result.get('continuous_p50_tpot_ms', '?')} ms",
                "GPU throughput is computed from peak FLOPs and a stated MFU, not measured: "
                "no GPU on the benchmark machine",
                f"stated: {KV_GIB:g} GiB of KV cache an instance, {serving.input_ratio:g} "
                "input tokens an output token",
            ],
            extras=extras,
        )

    return workload
