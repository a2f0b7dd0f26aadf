"""``loopline plan APP`` on the committed results (benchmarks/results), the hosted against
self-hosted break-even by hand, and a missing result's error through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopline.cli import app, register_applications
from loopline.llm.serve_plan import Serving, break_even, fine_tuning, gpu_tokens_per_s
from loopline.ops.plan import Load
from loopline.ops.prices import load_prices
from loopline.ops.results import RESULTS, load, save

APPS = {"fraud": "serving", "recs": "recs", "vision": "vision", "moderation": "moderation",
        "llm": "llm-serve"}  # fmt: skip


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    register_applications()
    return CliRunner()


def test_plan_fraud_json_on_the_committed_results(runner: CliRunner, tmp_path: Path) -> None:
    page = tmp_path / "plan.html"
    got = runner.invoke(app, ["plan", "fraud", "--tps", "1000", "--json", "--html", str(page)])
    assert got.exit_code == 0, got.output
    out = json.loads(got.output)
    assert {"cores", "memory_gib", "storage_gib", "monthly_cost", "roles", "what_ifs",
            "sources"} <= set(out)  # fmt: skip
    serving = load("serving")
    scorer = out["roles"]["scorer"]
    # the scorer's per-core figure is what a benchmark saved, never typed in
    saved = [s["benchmark"] for s in out["sources"]]
    assert saved[0] == "serving"
    if "scale" in saved:
        assert scorer["source"].startswith("scale:")
    else:
        assert scorer["per_core"] == serving.figure("http_max_rps")
    assert out["sources"][0]["date"] == serving.date
    # 3000/s at the peak needs more than one core at any measured rate here, plus a spare
    assert out["cores"] >= 3
    assert out["monthly_cost"] > 0
    assert out["monthly_cost"] == pytest.approx(
        sum(out["costs"].values()), abs=0.02
    )  # compute + storage + network
    names = [w["name"] for w in out["what_ifs"]]
    assert names[:2] == ["spot", "autoscaling"]
    assert "batching" in names
    assert "<svg" in page.read_text()


@pytest.mark.parametrize("name", ["recs", "vision", "moderation", "llm"])
def test_every_application_plans_from_its_saved_result(runner: CliRunner, name: str) -> None:
    if not (RESULTS / f"{APPS[name]}.json").exists():
        pytest.fail(f"benchmarks/results/{APPS[name]}.json is not committed")
    got = runner.invoke(app, ["plan", name, "--json"])
    assert got.exit_code == 0, got.output
    out = json.loads(got.output)
    assert out["sources"][0]["benchmark"] == APPS[name]
    assert out["monthly_cost"] > 0
    assert out["roles"]
    if name == "llm":
        assert out["break_even"]["gpu"]["how"].startswith("computed, not measured")


def test_a_missing_result_through_the_command_line(runner: CliRunner, tmp_path: Path) -> None:
    got = runner.invoke(app, ["plan", "fraud", "--results", str(tmp_path), "--json"])
    assert got.exit_code != 0
    said = " ".join(got.output.replace("│", " ").split())  # rich wraps the message in a box
    assert "loopline bench serving --json --save" in said
    bad = runner.invoke(app, ["plan", "fraud", "--peak", "0.5"])
    assert bad.exit_code != 0
    assert "peak" in bad.output


def test_llm_break_even_by_hand() -> None:
    prices = load_prices()
    load_ = Load(rate=1.0, peak=2.0, regions=1)
    # a unit serves 1000 tokens/s at most 70 % busy, sized for a peak twice the mean: it
    # covers a mean of 1000 x 0.7 / 2 = 350 tokens/s = 350 x 730 x 3600 = 919.8e6 a month.
    # At $2 an hour (1460 a month) and the API at $2 a million (2e-6 a token), with one
    # spare: k units cover up to k x 919.8e6 and cost (k + 1) x 1460:
    #   k=1: 2920 / 2e-6 = 1.46e9 > 0.9198e9;  k=2: 4380 / 2e-6 = 2.19e9 > 1.8396e9;
    #   k=3: 5840 / 2e-6 = 2.92e9 > 2.7594e9;  k=4: 7300 / 2e-6 = 3.65e9 <= 3.6792e9
    even = break_even(
        unit_tps=1000.0, unit_hourly=2.0, hosted_per_token=2e-6, load=load_, prices=prices
    )
    assert even == pytest.approx(3.65e9)
    # at $1 a million, a unit at full use costs 1460 / 919.8e6 = 1.587e-6 a token: never
    never = break_even(
        unit_tps=1000.0, unit_hourly=2.0, hosted_per_token=1e-6, load=load_, prices=prices
    )
    assert never is None
    # two regions, a unit in each a step: a step covers 2 x 919.8e6 = 1.8396e9 tokens and
    # costs 2 x 1460 = 2920 (1.587e-6 a token, as one region). At $2 a million:
    #   k=3: (3 + 1) x 2920 / 2e-6 = 5.84e9 > 5.5188e9;  k=4: 7.3e9 <= 7.3584e9
    two = Load(rate=1.0, peak=2.0, regions=2)
    even = break_even(
        unit_tps=1000.0, unit_hourly=2.0, hosted_per_token=2e-6, load=two, prices=prices
    )
    assert even == pytest.approx(7.3e9)
    # at $1.5 a million the step's 1.587e-6 a token never catches up (this looped forever
    # when the check priced one region's unit against both regions' tokens)
    assert (
        break_even(unit_tps=1000.0, unit_hourly=2.0, hosted_per_token=1.5e-6, load=two,
                   prices=prices)
        is None
    )  # fmt: skip
    # an H100: 989e12 FLOPs/s x 0.2 / (2 x 268e6 x (1 + 2)) = 123,009.95 tokens/s (computed)
    assert gpu_tokens_per_s(Serving()) == pytest.approx(123_009.95, rel=1e-6)
    # fine-tuning 1e9 tokens a month: 6 x 268e6 x 1e9 = 1.608e18 FLOPs / (989e12 x 0.4)
    # = 4,065 s = 1.13 GPU-hours (rounded: 1) x $4.916 = $5.55 (rounded: 6)
    tuned = fine_tuning(Serving(finetune_tokens=1e9), prices)
    assert (tuned["gpu_hours"], tuned["monthly"]) == (1, 6)


def test_fraud_scale_out_profile_by_hand(runner: CliRunner, tmp_path: Path) -> None:
    save("serving", {"http_max_rps": 2000, "stream_tx_per_s": 6000,
                     "http_p99_ms_at_half_load": 20.0}, folder=tmp_path)  # fmt: skip
    cpu = {"scorer": 1.0, "worker": 0.5, "redis": 0.25, "postgres": 0.2, "noida": 0.2,
           "mlflow": 0.03, "loadgen": 0.1}  # fmt: skip
    save("scale", {"per_n": [{"n": 1, "cpu_ms_per_tx": cpu}]}, folder=tmp_path)
    prices = tmp_path / "prices.toml"
    prices.write_text("core_hour = 0.03745\nmemory_gib_hour = 0.0035875\nhours_month = 730\n")
    got = runner.invoke(app, ["plan", "fraud", "--tps", "100", "--results", str(tmp_path),
                              "--prices", str(prices), "--json"])  # fmt: skip
    assert got.exit_code == 0, got.output
    out = json.loads(got.output)
    # peak 300/s. scorer: 1 ms a transaction, M/M/1 P(T > 100 ms) = e^-(1000 - 300) 0.1 ~ 0
    # -> 1 core + 1 spare. worker: ceil(300 / (2000 x 0.7)) = 1 + 1; redis (4000/s a core),
    # postgres and kafka (5000/s): 1 + 1 each. mlflow and the load generator are not roles.
    assert {k: v["cores"] for k, v in out["roles"].items()} == {
        "scorer": 2, "worker": 2, "redis": 2, "postgres": 2, "kafka": 2}  # fmt: skip
    # memory: 2 x 1 + 2 x 1 + 3 x (2 x 4) = 28 GiB
    assert out["memory_gib"] == 28.0
    # compute at $0.03745 a core-hour, $0.0035875 a GiB-hour, 730 h):
    # scorer, worker: 2 x (0.03745 + 0.0035875) x 730 = 59.91475 each;
    # redis, postgres, kafka: 2 x (0.03745 + 4 x 0.0035875) x 730 = 75.628 each -> 346.7135
    assert out["costs"]["compute"] == pytest.approx(346.71, abs=0.01)
    # batching: the stream scorer's 6000/s against HTTP's 2000/s, a measured x3
    batching = next(w for w in out["what_ifs"] if w["name"] == "batching")
    assert "x3.00" in batching["note"]
    assert [s["benchmark"] for s in out["sources"]] == ["serving", "scale"]
