"""Fronts read from saved benchmark results (``loopline bench pareto vision|llm``), on small
hand-written results, and a quality that is better lower (perplexity)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loopline.apps.vision import levers as vision
from loopline.exceptions import ConfigError
from loopline.llm import levers as llm
from loopline.ops import Point, cost_per_million, load_prices, pareto_front

PRICES = load_prices()
MACHINE = {"cpu": "test cpu", "cores": 4, "affinity": 2}


def saved(folder: Path, name: str, result: dict[str, Any]) -> Path:
    payload = {
        "benchmark": name,
        "date": "2026-12-07T17:00:00+00:00",
        "machine": MACHINE,
        "command": f"loopline bench {name} --json --save",
        "result": result,
    }
    (folder / f"{name}.json").write_text(json.dumps(payload))
    return folder


def vision_result(*, fp32_ms: float, int8_ms: float, map50_int8: float) -> dict[str, Any]:
    return {
        "map50_fp32": 0.737,
        "map50_95_fp32": 0.445,
        "map50_int8": map50_int8,
        "map50_95_int8": 0.44,
        "fp32_ms": fp32_ms,
        "int8_ms": int8_ms,
        "frame_p50_ms": 7.7,
        "frame_p99_ms": 19.5,
        "train_frames": 4000,
    }


def test_vision_int8_faster_at_nearly_equal_map_is_on_the_front(tmp_path: Path) -> None:
    folder = saved(tmp_path, "vision", vision_result(fp32_ms=10.0, int8_ms=4.0, map50_int8=0.735))
    got = vision.sweep(PRICES, lambda _: None, folder)
    points = {p.name: p for p in got["points"]}
    # on the raw figures fp32's 0.002 more mAP keeps it on the front too
    assert pareto_front(got["points"]) == ["detector fp32", "detector int8"]
    assert points["detector fp32"].quality == pytest.approx(0.737)
    assert points["detector int8"].latency_p50_ms == 4.0
    # one core for the call's time: 4 ms of CPU a frame
    assert points["detector int8"].cost_per_million == pytest.approx(
        cost_per_million(0.004, PRICES)
    )
    assert points["detector int8"].figures["pipeline_frame_p99_ms"] == 19.5
    assert got["source"]["command"] == "loopline bench vision --json --save"
    assert got["source"]["date"].startswith("2026-12-07")


def test_vision_a_dominated_detector_is_off_the_front(tmp_path: Path) -> None:
    # int8 faster at the same mAP: fp32 off
    folder = saved(tmp_path, "vision", vision_result(fp32_ms=10.0, int8_ms=4.0, map50_int8=0.737))
    assert pareto_front(vision.sweep(PRICES, lambda _: None, folder)["points"]) == ["detector int8"]
    # int8 slower than fp32 at lower mAP: int8 off
    folder = saved(tmp_path, "vision", vision_result(fp32_ms=3.0, int8_ms=4.0, map50_int8=0.70))
    assert pareto_front(vision.sweep(PRICES, lambda _: None, folder)["points"]) == ["detector fp32"]


def dtype(tokens_1: float, tokens_16: float, perplexity: float) -> dict[str, float]:
    return {
        "weight_gib": 0.5,
        "tokens_per_s_1": tokens_1,
        "tokens_per_s_16": tokens_16,
        "perplexity": perplexity,
    }


def trace(how: str, tokens: float, tpot: tuple[float, float]) -> dict[str, float]:
    return {
        f"{how}_tokens_per_s": tokens,
        f"{how}_p50_tpot_ms": tpot[0],
        f"{how}_p99_tpot_ms": tpot[1],
        f"{how}_p50_ttft_ms": 5000.0,
        f"{how}_p99_ttft_ms": 10000.0,
    }


def llm_result() -> dict[str, Any]:
    quant = {
        # fp32 is dominated: slower, dearer and worse perplexity than bf16 at 16 sequences
        # (and than int8 at 1 sequence)
        "fp32": dtype(16.0, 100.0, 131.5),
        "bf16": dtype(18.0, 200.0, 130.3),
        "int8": dtype(25.0, 80.0, 130.0),
    }
    return {
        "model": "gemma-3-270m (Q4_K_M GGUF, float32)",
        "max_seqs": 16,
        "quantization": quant,
        **trace("continuous", 70.0, (150.0, 500.0)),
        **trace("static", 19.0, (200.0, 550.0)),
    }


def test_llm_points_and_front_with_perplexity_lower_is_better(tmp_path: Path) -> None:
    got = llm.sweep(PRICES, lambda _: None, saved(tmp_path, "llm-serve", llm_result()))
    points = {p.name: p for p in got["points"]}
    assert all(not p.higher_is_better for p in points.values())
    # per sequence: 16 sequences at 200 tokens/s together = 80 ms a token each
    assert points["bf16, 16 sequences"].latency_p50_ms == pytest.approx(80.0)
    assert points["int8, 1 sequence"].latency_p50_ms == pytest.approx(40.0)
    # two cores (the saved affinity, not the 4 cores) for 1 / 200 s a token
    assert points["bf16, 16 sequences"].cost_per_million == pytest.approx(
        cost_per_million(2 / 200.0, PRICES)
    )
    continuous = points["continuous batching (fp32, trace)"]
    assert (continuous.latency_p50_ms, continuous.latency_p99_ms) == (150.0, 500.0)
    assert continuous.quality == 131.5  # the trace ran the float32 weights
    assert pareto_front(got["points"]) == [
        "bf16, 16 sequences",  # cheapest
        "int8, 1 sequence",  # fastest and lowest perplexity
        "int8, 16 sequences",  # lowest perplexity, cheaper than int8 at 1 sequence
    ]
    batching = [p for p in got["points"] if p.lever == "batching"]
    assert pareto_front(batching) == ["continuous batching (fp32, trace)"]


def test_a_missing_figure_names_the_command_that_measures_it(tmp_path: Path) -> None:
    result = llm_result()
    del result["quantization"]["bf16"]["perplexity"]
    with pytest.raises(ConfigError, match="loopline bench llm-serve"):
        llm.sweep(PRICES, lambda _: None, saved(tmp_path, "llm-serve", result))


def p(name: str, latency: float, quality: float, *, higher: bool = False) -> Point:
    return Point(
        name=name,
        lever="dtype",
        latency_p50_ms=latency,
        latency_p99_ms=latency,
        quality=quality,
        cost_per_million=1.0,
        higher_is_better=higher,
    )


def test_lower_is_better_quality_flips_the_comparison() -> None:
    low, high = p("low perplexity", 1.0, 10.0), p("high perplexity", 1.0, 20.0)
    assert low.dominates(high)
    assert pareto_front([high, low]) == ["low perplexity"]
    up_low, up_high = p("a", 1.0, 10.0, higher=True), p("b", 1.0, 20.0, higher=True)
    assert pareto_front([up_low, up_high]) == ["b"]
    assert Point(**low.to_dict()) == low  # the flag survives a saved record


def test_points_measuring_quality_both_ways_do_not_compare() -> None:
    with pytest.raises(ConfigError, match="higher_is_better"):
        pareto_front([p("a", 1.0, 10.0), p("b", 1.0, 10.0, higher=True)])
