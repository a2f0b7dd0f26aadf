"""The LLM engine's latency, quality and cost levers (``loopline bench pareto llm``), read
from the saved result of ``loopline bench llm-serve``: nothing is measured here.

Levers:

* ``dtype``: float32, bfloat16 and weight-only int8, each decoding 1 and 16 sequences
  (``quantization``: ``tokens_per_s_1``, ``tokens_per_s_16``, all sequences' tokens
  together). Latency: the time per output token of each sequence, ``1000 x n /
  tokens_per_s_n`` ms (each step gives every sequence one token); the benchmark keeps no
  99th percentile here, so a point's p99 repeats its median (its settings say so).
* ``batching``: continuous against static batching on the benchmark's trace (Poisson
  arrivals, long-tailed output lengths), with the trace's weights (float32 unless its
  ``model`` says otherwise). Latency: the measured time per output token (p50, p99);
  throughput: output tokens over the trace, so it is bounded by the arrival rate, not
  the engine's ceiling.

Quality: perplexity on held-out text (lower is better; ``higher_is_better=False``). The
batching points run the same weights as the dtype they name, so they carry its
perplexity. Cost: the engine used the machine's cores (PyTorch's threads, the saved
``affinity``), so a token costs ``affinity / tokens_per_s`` core-seconds, priced at the
core-hour (an upper bound: a core idle during a step is counted).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopline.ops import Point, Prices, Saved, cost_per_million, load_result

QUALITY = "perplexity (held-out text; lower is better)"
DTYPES = ("fp32", "bf16", "int8")
SEQUENCES = (1, 16)
P99_NOT_MEASURED = "not measured: the median repeated"


def cores(saved: Saved) -> int:
    """The cores the benchmark ran on (its machine's affinity, else its core count)."""
    return int(saved.machine.get("affinity") or saved.machine.get("cores") or 1)


def trace_dtype(saved: Saved) -> str:
    """The weights the trace ran: bf16 when its model names bfloat16, else fp32."""
    return "bf16" if "bfloat16" in str(saved.result.get("model", "")) else "fp32"


def _dtype_points(saved: Saved, prices: Prices) -> list[Point]:
    out = []
    for dtype in DTYPES:
        perplexity = saved.figure("quantization", dtype, "perplexity")
        for n in SEQUENCES:
            tps = saved.figure("quantization", dtype, f"tokens_per_s_{n}")
            ms = 1000.0 * n / tps
            out.append(
                Point(
                    name=f"{dtype}, {n} sequence{'s' if n > 1 else ''}",
                    lever="dtype",
                    settings={"dtype": dtype, "sequences": n, "p99": P99_NOT_MEASURED},
                    latency_p50_ms=ms,
                    latency_p99_ms=ms,
                    quality=perplexity,
                    cost_per_million=cost_per_million(cores(saved) / tps, prices),
                    figures={
                        "tokens_per_s": tps,
                        "weight_gib": saved.figure("quantization", dtype, "weight_gib"),
                    },
                    higher_is_better=False,
                )
            )
    return out


def _batching_points(saved: Saved, prices: Prices) -> list[Point]:
    dtype = trace_dtype(saved)
    out = []
    for how in ("continuous", "static"):
        tps = saved.figure(f"{how}_tokens_per_s")
        out.append(
            Point(
                name=f"{how} batching ({dtype}, trace)",
                lever="batching",
                settings={"batching": how, "dtype": dtype, "max_seqs": saved.figure("max_seqs")},
                latency_p50_ms=saved.figure(f"{how}_p50_tpot_ms"),
                latency_p99_ms=saved.figure(f"{how}_p99_tpot_ms"),
                quality=saved.figure("quantization", dtype, "perplexity"),
                cost_per_million=cost_per_million(cores(saved) / tps, prices),
                figures={
                    "tokens_per_s": tps,
                    "p50_ttft_ms": saved.figure(f"{how}_p50_ttft_ms"),
                    "p99_ttft_ms": saved.figure(f"{how}_p99_ttft_ms"),
                },
                higher_is_better=False,
            )
        )
    return out


def points(saved: Saved, prices: Prices) -> list[Point]:
    """The dtype and batching points of a saved ``loopline bench llm-serve`` result."""
    return _dtype_points(saved, prices) + _batching_points(saved, prices)


def sweep(prices: Prices, say: Callable[[str], None], folder: Path | None = None) -> dict[str, Any]:
    """The points of the saved result in ``folder`` (default: ``benchmarks/results``),
    with what they were measured on and where they came from."""
    saved = load_result("llm-serve", folder)
    say(f"reading {saved.path}: `{saved.command}`, {saved.date}")
    data = {
        "model": saved.result.get("model", ""),
        "perplexity": "held-out text, as `loopline bench llm-serve` scores it",
        "trace": f"{saved.result.get('requests')} requests at {saved.result.get('rate')}/s",
        "cores": cores(saved),
    }
    return {"points": points(saved, prices), "data": data, "source": saved.source()}
