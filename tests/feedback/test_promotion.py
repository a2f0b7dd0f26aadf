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
from loopline.feedback.labels import Label, LabelBook
from loopline.feedback.promotion import Evidence, gate, shadow_evidence
from loopline.registry import Registry
from loopline.serving.decisions import COLUMNS, DecisionLog


def _evidence(n: int = 4000, *, gain: float, seed: int = 0, **serving: float) -> Evidence:
    """Scores of two models on the same labelled transactions; the challenger separates
    fraud from genuine ``gain`` better."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.03).astype(np.int8)
    champion = rng.normal(size=n) + 1.5 * y
    challenger = rng.normal(size=n) + (1.5 + gain) * y
    return Evidence(y, champion, challenger, **serving)  # type: ignore[arg-type]


def test_a_clearly_better_challenger_passes_with_its_reasons() -> None:
    result = gate(_evidence(gain=1.0, champion_p99_ms=2.0, challenger_p99_ms=2.2,
                            challenger_calls=4000))  # fmt: skip
    assert result.passed, result.reasons
    assert result.figures["ap_challenger"] > result.figures["ap_champion"]
    assert result.figures["p_challenger_better"] >= 0.95
    assert result.reasons[0].startswith("quality: AP")


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


def test_too_few_matured_frauds_means_wait() -> None:
    result = gate(_evidence(n=300, gain=2.0))
    assert not result.passed
    assert result.wait
    assert "wait for more labels" in result.reasons[0]


def test_evidence_pairs_shadow_scores_with_the_labels_matured_by_then(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "decisions.db")
    row = dict.fromkeys(COLUMNS, "x") | {"decided_ms": 0, "score": 0.5, "features": b"{}",
                                         "response": b"{}"}  # fmt: skip
    rows = [
        row
        | {
            "idempotency_key": f"t{i}",
            "transaction_id": f"t{i}",
            "model_score": 0.1 * i,
            "shadow_score": 0.2 * i,
            "shadow_model": "fraud:2",
        }
        for i in range(4)
    ]
    rows.append(row | {"idempotency_key": "t9", "transaction_id": "t9", "model_score": 0.9,
                       "shadow_score": None, "shadow_model": None})  # fmt: skip
    log.write_sync(rows)
    log.close()
    book = LabelBook(tmp_path / "labels.db")
    book.add([Label("t0", False, 100), Label("t1", True, 100), Label("t2", False, 900),
              Label("t9", True, 100)])  # fmt: skip
    book.close()
    got = shadow_evidence(
        tmp_path / "decisions.db", tmp_path / "labels.db", "fraud:2", labelled_before_ms=500
    )
    assert got.y.tolist() == [0, 1], "t2's label came after the gate; t9 was not shadowed"
    assert got.champion.tolist() == [0.0, 0.1]
    assert got.challenger.tolist() == [0.0, 0.2]


def test_steps_are_recorded_and_shown_by_models_history(tmp_path: Path) -> None:
    registry = Registry(root=tmp_path / "registry")
    files = {"model.txt": b"m"}
    for _ in range(2):
        registry.register("fraud", files=files, metrics={}, params={}, tags={})
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
