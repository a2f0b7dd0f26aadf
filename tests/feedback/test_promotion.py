"""The promotion gate passes a better challenger and refuses a worse one, a slow one, a
failing one, or one judged on too few labels; the steps are recorded and shown by
`loopline models history`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from loopline.cli import app
from loopline.feedback import Evidence, gate, shadow_evidence
from loopline.predictions import Label, Row, SqliteLog
from loopline.registry import Bundle, Registry, Signature
from loopline.tasks import NDCG, AveragePrecision


def _evidence(n: int = 4000, *, gain: float, seed: int = 0, **serving: float) -> Evidence:
    """Scores of two models on the same labelled requests; the challenger separates
    positives from negatives ``gain`` better."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.03).astype(float)
    champion = rng.normal(size=n) + 1.5 * y
    challenger = rng.normal(size=n) + (1.5 + gain) * y
    metric, labels = AveragePrecision(), [{"": v} for v in y]
    return Evidence(
        metric,
        metric.arrays([{"score": s} for s in champion], labels),
        metric.arrays([{"score": s} for s in challenger], labels),
        **serving,  # type: ignore[arg-type]
    )


def test_a_clearly_better_challenger_passes_with_its_reasons() -> None:
    result = gate(_evidence(gain=1.0, champion_p99_ms=2.0, challenger_p99_ms=2.2,
                            challenger_calls=4000))  # fmt: skip
    assert result.passed, result.reasons
    figures = result.figures
    assert figures["average_precision_challenger"] > figures["average_precision_champion"]
    assert figures["p_challenger_better"] >= 0.95
    assert result.reasons[0].startswith("quality: average_precision")


def test_an_equal_or_worse_challenger_is_refused() -> None:
    for gain in (0.0, -0.5):
        result = gate(_evidence(gain=gain, challenger_calls=4000))
        assert not result.passed
        assert "ahead in only" in result.reasons[0]


def test_slow_or_failing_challengers_are_refused_whatever_their_quality() -> None:
    slow = gate(_evidence(gain=1.0, champion_p99_ms=4.0, challenger_p99_ms=6.0,
                          challenger_calls=4000))  # fmt: skip
    assert not slow.passed
    assert "latency: p99 6.00 ms against 4.00 ms (1.50x; limit 1.25x or +1 ms)" in slow.reasons
    failing = gate(_evidence(gain=1.0, challenger_errors=40, challenger_calls=4000))
    assert not failing.passed
    assert "errors: 40 of 4000 calls (1.000%, limit 0.100%)" in failing.reasons


def test_microsecond_latency_differences_are_within_the_allowance() -> None:
    # 30 us against 20 us is 1.5x, yet far below what a 50 ms budget can notice
    quick = gate(_evidence(gain=1.0, champion_p99_ms=0.02, challenger_p99_ms=0.03,
                           challenger_calls=4000))  # fmt: skip
    assert quick.passed, quick.reasons
    assert quick.figures["latency_ratio"] == pytest.approx(1.5)
    over = gate(_evidence(gain=1.0, champion_p99_ms=0.02, challenger_p99_ms=1.5,
                          challenger_calls=4000))  # fmt: skip
    assert not over.passed


def test_too_few_matured_positives_means_wait() -> None:
    result = gate(_evidence(n=300, gain=2.0))
    assert not result.passed
    assert result.wait
    assert "wait for more labels" in result.reasons[0]


def test_evidence_pairs_shadow_outputs_with_the_labels_matured_by_then(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "predictions.db")

    def row(i: int, model: float, shadow: float | None, shadow_model: str | None) -> Row:
        return Row(
            f"t{i}", f"t{i}", "h", 0, "u", "m:1", "champion", b"{}",
            json.dumps({"score": model}).encode(), b"{}", shadow_model,
            None if shadow is None else json.dumps({"score": shadow}).encode(),
        )  # fmt: skip

    log.write_many([row(i, 0.1 * i, 0.2 * i, "m:2") for i in range(4)] + [row(9, 0.9, None, None)])
    log.add_labels([Label("t0", 0.0, 100), Label("t1", 1.0, 100), Label("t2", 0.0, 900),
                    Label("t9", 1.0, 100)])  # fmt: skip
    got = shadow_evidence(log, AveragePrecision(), "m:2", labelled_before_ms=500)
    log.close()
    ok, y, champion = got.champion
    assert ok.tolist() == [True, True], "t2's label came after the gate; t9 was not shadowed"
    assert y.tolist() == [0, 1]
    assert champion.tolist() == [0.0, 0.1]
    assert got.challenger[2].tolist() == [0.0, 0.2]
    assert (got.challenger_calls, got.challenger_errors) == (4, 0)


def test_the_gate_judges_a_ranking_task_by_ndcg() -> None:
    """Rankings of 10 items, relevance known for each: the challenger puts the relevant
    items first more often."""
    rng = np.random.default_rng(3)
    labels, champion, challenger = [], [], []
    for _ in range(400):
        items = [f"i{j}" for j in range(10)]
        relevance = {i: float(rng.integers(0, 4)) for i in items}
        labels.append(relevance)
        champion.append({"items": list(rng.permutation(items))})
        noisy = {i: relevance[i] + rng.normal(0, 1.0) for i in items}
        challenger.append({"items": sorted(items, key=lambda i: -noisy[i])})
    metric = NDCG(k=5)
    evidence = Evidence(metric, metric.arrays(champion, labels), metric.arrays(challenger, labels))
    result = gate(evidence, min_support=30)
    assert result.passed, result.reasons
    assert result.reasons[0].startswith("quality: ndcg_at_5")
    reversed_ = gate(Evidence(metric, evidence.challenger, evidence.champion), min_support=30)
    assert not reversed_.passed


def test_steps_are_recorded_and_shown_by_models_history(tmp_path: Path) -> None:
    registry = Registry(root=tmp_path / "registry")
    packed = Bundle(Signature(task="binary", flavour="onnx-trees", inputs=("x",)),
                    {"model.txt": b"m"})  # fmt: skip
    for _ in range(2):
        registry.register("fraud", bundle=packed, metrics={}, params={}, tags={})
    registry.promote("fraud", 1)
    result = gate(_evidence(gain=0.0, challenger_calls=100))
    registry.record("fraud", 2, "promotion gate", trigger="drift: amount",
                    passed=result.passed, why="; ".join(result.reasons))  # fmt: skip
    registry.promote("fraud", 2, trigger="gate passed", why="AP 0.71 against 0.64")
    registry.rollback("fraud", trigger="canary degraded", why="decline rate 3x")
    steps = registry.history("fraud")
    assert [(s.version, s.action, s.trigger, s.passed) for s in steps] == [
        (1, "promote to champion", "manual", True),
        (2, "promotion gate", "drift: amount", False),
        (2, "promote to champion", "gate passed", True),
        (1, "roll champion back", "canary degraded", True),
    ]
    out = CliRunner().invoke(
        app, ["models", "history", "fraud", "--registry", registry.uri, "--json"]
    )
    assert out.exit_code == 0, out.output
    shown = [json.loads(line) for line in out.output.splitlines()]
    assert [s["action"] for s in shown] == [s.action for s in steps]
    assert "ahead in only" in shown[1]["why"]
