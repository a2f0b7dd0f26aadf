"""The vision detector's latency, quality and cost lever (``loopline bench pareto vision``),
read from the saved result of ``loopline bench vision``: nothing is measured here.

Lever: the detector's precision, FP32 against static INT8 (ONNX Runtime, one thread).
Latency: the median time of one detector call on one frame, pinned to one core, FP32 and
INT8 interleaved in rounds (``fp32_ms``, ``int8_ms``); the benchmark keeps no 99th
percentile of the call alone, so a point's p99 repeats its median (its settings say so).
Quality: mAP@0.5 on held-out generated frames (``map50_fp32``, ``map50_int8``; mAP@0.5:0.95
beside it). Cost: the call keeps one core busy for its time, so the CPU-seconds of a frame
are the one-core time, priced at the core-hour. The INT8 point also carries the whole
pipeline's frame time with INT8 (``frame_p50_ms``, ``frame_p99_ms``: capture to publish).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopline.ops import Point, Prices, Saved, cost_per_million, load_result

QUALITY = "mAP@0.5 (held-out generated frames)"
P99_NOT_MEASURED = "not measured for the call alone: the median repeated"


def points(saved: Saved, prices: Prices) -> list[Point]:
    """The FP32 and INT8 detector points of a saved ``loopline bench vision`` result."""
    out = []
    for dtype in ("fp32", "int8"):
        ms = saved.figure(f"{dtype}_ms")
        figures = {"map50_95": saved.figure(f"map50_95_{dtype}"), "cpu_ms_per_frame": ms}
        if dtype == "int8":
            figures["pipeline_frame_p50_ms"] = saved.figure("frame_p50_ms")
            figures["pipeline_frame_p99_ms"] = saved.figure("frame_p99_ms")
        out.append(
            Point(
                name=f"detector {dtype}",
                lever="precision",
                settings={"dtype": dtype, "threads": 1, "p99": P99_NOT_MEASURED},
                latency_p50_ms=ms,
                latency_p99_ms=ms,
                quality=saved.figure(f"map50_{dtype}"),
                cost_per_million=cost_per_million(ms / 1000.0, prices),
                figures=figures,
            )
        )
    return out


def sweep(prices: Prices, say: Callable[[str], None], folder: Path | None = None) -> dict[str, Any]:
    """The points of the saved result in ``folder`` (default: ``benchmarks/results``),
    with what they were measured on and where they came from."""
    saved = load_result("vision", folder)
    say(f"reading {saved.path}: `{saved.command}`, {saved.date}")
    data = {"data": "generated frames, held out"} | {
        k: saved.result[k] for k in ("train_frames", "epochs", "width") if k in saved.result
    }
    return {"points": points(saved, prices), "data": data, "source": saved.source()}
