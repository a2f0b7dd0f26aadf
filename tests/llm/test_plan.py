"""The planner against published figures: GPT-3's training FLOPs, the ZeRO paper's
memory per GPU, and the activation formula of Korthikanti et al. by hand."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from loopline.cli import app, register_applications
from loopline.exceptions import ConfigError
from loopline.llm.configs import CONFIGS, ModelConfig, shape_for
from loopline.llm.plan import GIB, activation_bytes, plan, state_bytes


def test_gpt3_175b_training_flops_match_its_paper() -> None:
    # Brown et al. 2020, table D.1: GPT-3 175B, 300B tokens, 3.14e23 FLOPs
    planned = plan(shape=CONFIGS["gpt3-175b"], tokens=300e9, gpus=1024)
    assert planned.params == pytest.approx(175e9, rel=0.002)  # GPT-3's shape, this block
    assert planned.training_flops == pytest.approx(3.14e23, rel=0.005)


@pytest.mark.parametrize(
    ("sharding", "gb"),
    [("none", 120.0), ("zero1", 31.4), ("zero2", 16.6), ("zero3", 1.9)],
)
def test_memory_per_gpu_matches_the_zero_paper(sharding: str, gb: float) -> None:
    # Rajbhandari et al. 2020, figure 1: 7.5B parameters, 64 GPUs, K = 12
    total = sum(state_bytes(7.5e9, 64, sharding).values())  # type: ignore[arg-type]
    assert total / 1e9 == pytest.approx(gb, abs=0.05)


def test_activations_follow_korthikanti_et_al() -> None:
    shape = ModelConfig(
        vocab_size=1000, d_model=1024, n_layers=10, n_heads=16, n_kv_heads=16, seq_len=512
    )
    s, b, h, a, layers, v = 512, 4, 1024, 16, 10, 1000
    logits = 4 * s * b * v
    unfused = activation_bytes(shape, b, checkpointing=False, fused_attention=False)
    assert unfused == layers * s * b * h * (34 + 5 * a * s / h) + logits
    fused = activation_bytes(shape, b, checkpointing=False)
    assert fused == layers * 34 * s * b * h + logits
    kept = activation_bytes(shape, b, checkpointing=True)
    assert kept == layers * 2 * s * b * h + 34 * s * b * h + logits
    assert kept < fused < unfused


def test_the_seeds_175b_plan_fits_and_takes_days_not_years() -> None:
    planned = plan(shape=CONFIGS["gpt3-175b"], tokens=300e9, gpus=1024, gpu="h100")
    summary = planned.summary()
    # 6 * 175.18e9 * 300e9 = 3.153e23 FLOPs / (1024 * 989e12 * 0.4) FLOP/s = 9.01 days
    assert summary["days"] == pytest.approx(9.01, abs=0.005)
    assert summary["fits"] is True
    assert summary["memory_per_gpu_gib"] < summary["memory_per_gpu_gib_without_checkpointing"]
    # replicated, 175B parameters need 16 bytes each on every GPU: no GPU holds 2.8 TB
    replicated = plan(shape=CONFIGS["gpt3-175b"], tokens=300e9, gpus=1024, sharding="none")
    assert replicated.summary()["fits"] is False
    assert replicated.memory(checkpointing=True)["total"] > 16 * 175e9


def test_a_shape_is_found_for_any_size() -> None:
    for params in (125e6, 1.3e9, 7e9, 70e9, 175e9):
        shape = shape_for(params)
        assert shape.params() == pytest.approx(params, rel=0.06)
        assert shape.d_model % shape.n_heads == 0
    with pytest.raises(ConfigError):
        shape_for(10)


def test_bad_shapes_and_plans_are_refused() -> None:
    with pytest.raises(ConfigError, match="multiple of n_kv_heads"):
        ModelConfig(vocab_size=10, d_model=64, n_layers=1, n_heads=4, n_kv_heads=3)
    with pytest.raises(ConfigError, match="even width"):
        ModelConfig(vocab_size=10, d_model=60, n_layers=1, n_heads=4, n_kv_heads=4)
    with pytest.raises(ConfigError, match="No GPU"):
        plan(shape=CONFIGS["tiny"], tokens=1e6, gpus=1, gpu="tpu")
    with pytest.raises(ConfigError, match="mfu"):
        plan(shape=CONFIGS["tiny"], tokens=1e6, gpus=1, mfu=1.5)


def test_plan_llm_command_prints_one_json_object() -> None:
    register_applications()
    result = CliRunner().invoke(
        app,
        ["plan", "llm-train", "--params", "175e9", "--tokens", "300e9", "--gpus", "512",
         "--gpu", "h100", "--zero", "3", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["training_flops"] == pytest.approx(3.15e23)
    assert out["sharding"] == "zero3"
    assert out["days"] == pytest.approx(3.15e23 / (512 * 989e12 * 0.4) / 86_400, abs=0.01)
    assert out["memory_per_gpu_gib"] * GIB > 16 * 175e9 / 512
    bad = CliRunner().invoke(app, ["plan", "llm-train", "--zero", "4"])
    assert bad.exit_code != 0
