"""The fraud topology on the capacity engine: the plan's arithmetic, its scenarios
behaving as designed (a lost region, a lost Redis shard), and the single-node check,
on a synthetic samples file shaped like ``loopline bench scale``'s."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from loopline.cli import app
from loopline.demos.fraud.capacity import Measured, Plan, cores, region, scenarios, summary
from loopline.demos.fraud.capacity_check import single_node

CPU_MS = {"noida": 0.05, "redis": 0.02, "postgres": 0.03, "mlflow": 0.0, "worker": 0.1,
          "scorer": 0.5, "load_generator": 0.3}  # fmt: skip


def _samples(path: Path, *, gap_ms: float = 1.0, share: float = 0.5) -> Path:
    rng = np.random.default_rng(0)
    per_n = [
        {"n": n, "tx_per_s": tx, "p50_ms": 3.0, "p99_ms": 20.0, "half_load_rate": tx / 2,
         "cpu_ms_per_tx": CPU_MS, "scorer_cpu_share": share}
        for n, tx in ((1, 1000.0), (2, 1300.0))
    ]  # fmt: skip
    samples = {
        "redis_rtt_s": rng.exponential(50e-6, 500).tolist(),
        "postgres_insert_s": rng.exponential(300e-6, 500).tolist(),
        "kafka_append_s": rng.exponential(100e-6, 200).tolist(),
        "worker_event_s": rng.exponential(100e-6, 50).tolist(),
        "worker_batch_events": [100.0] * 50,
        "scorer_gap_s_n1": [rng.exponential(gap_ms / 1000, 5000).tolist()],
    }
    path.write_text(json.dumps({"cores": 2, "per_n": per_n, "samples": samples}))
    return path


SMALL = Plan(tps=3000.0, regions=3, seconds=120.0, spike_s=60.0, spike_before_s=30.0,
             spike_after_s=30.0, incident_at_s=40.0, spike_fraction=1.0)  # fmt: skip


def test_each_region_carries_a_lost_ones_share(tmp_path: Path) -> None:
    m = Measured.load(_samples(tmp_path / "s.json"))
    per = cores(SMALL, m)
    carry = 3000 / 2
    assert per["scorers"] == math.ceil(carry * m.scorer.average() / 0.7)
    assert per["scorers_max"] == math.ceil(3000 * 10 / 3 * m.scorer.average() / 0.7)
    assert per["redis_shards"] >= SMALL.redis_primaries
    # the scorer's CPU per request: its gaps times its CPU share
    assert m.scorer.average() == pytest.approx(0.5e-3, rel=0.05)


def test_the_scenarios_lose_only_what_their_failures_cause(tmp_path: Path) -> None:
    m = Measured.load(_samples(tmp_path / "s.json"))
    results = scenarios(SMALL, m, seed=1)
    steady, region, shard = results["steady"], results["region_loss"], results["shard_loss"]
    assert steady.lost == 0
    assert steady.counts["fallback"] == 0
    # a lost region: its share until the traffic moved (10 s), and what it held
    assert region.counts["lost_down"] == pytest.approx(1000 * SMALL.failover_s, rel=0.1)
    assert region.counts["shed"] == 0  # the others had room for its share
    # a lost shard: answered from the rules, not lost
    assert shard.lost == 0
    assert shard.counts["fallback"] > 0
    answers = summary(SMALL, m, results)
    assert 0.99 < answers["availability"] < 1.0
    # the incidents' p99 over the minute after them, beside the whole run's
    assert answers["incident_window_s"] == [40.0, 100.0]
    assert answers["shard_loss_p99_ms"] >= answers["shard_loss_p99_ms_whole_run"]
    assert answers["region_loss_p99_ms_whole_run"] > 0
    assert answers["lost_transactions"]["shard_loss"] == 0
    assert answers["rules_only_decisions"]["shard_loss"] > 0


def test_the_single_node_model_is_cpu_bound_when_the_cores_are_full(tmp_path: Path) -> None:
    m = Measured.load(_samples(tmp_path / "s.json", gap_ms=1.0))
    check = single_node(m)
    one, two = check["per_n"]
    assert one["predicted_tx_per_s"] == pytest.approx(1000, rel=0.05)  # 1 / 1 ms
    cpu = sum(CPU_MS.values()) / 1000
    assert two["cpu_bound"]
    assert two["predicted_tx_per_s"] == pytest.approx(2 / cpu, rel=0.05)
    assert check["single_node_prediction_error"] == two["tx_per_s_error"]


def test_the_command_answers_in_json(tmp_path: Path) -> None:
    samples = _samples(tmp_path / "s.json")
    report = tmp_path / "capacity.html"
    args = ["simulate", "capacity", "--json", "--samples", str(samples), "--tps", "2000",
            "--seconds", "30", "--fraction", "1", "--report", str(report)]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    answers = json.loads(out.output)
    for key in ("steady_p99_ms", "spike_p99_ms", "region_loss_p99_ms", "lost_transactions",
                "availability", "cores_per_role", "single_node_prediction_error"):  # fmt: skip
        assert key in answers
    assert answers["simulated"] is True
    assert "<svg" in report.read_text()


def test_a_share_of_the_plan_rounds_its_servers_up(tmp_path: Path) -> None:
    m = Measured.load(_samples(tmp_path / "s.json"))
    per = {"scorers": 85, "scorers_max": 850, "redis_shards": 3, "partitions": 48,
           "postgres": 2, "workers": 7}  # fmt: skip
    tenth = region(SMALL, m, per, 0.1)
    assert tenth.pool.servers == 9  # 8.5 up, not to the even 8
    assert tenth.pool.max_servers == 85
    assert tenth.stream is not None
    assert tenth.stream.consumers == 1  # 0.7 up
    assert region(SMALL, m, per | {"scorers": 100}, 0.07).pool.servers == 7  # 7.000...1
