"""The drift scenario end to end, on the real parts (streaming scorer, event log, online
features, prediction log, label book, registry, drift monitor, retraining loop), at 1,000
simulated customers: the new pattern is detected within hours, a challenger goes through
shadow, gate and canary to champion with no one touching it, recall on the pattern
recovers, and 30 days of a control stream raise no alert."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from loopline.cli import app
from loopline.demos.fraud.scenario import ScenarioOptions, run


def test_drift_scenario_detects_retrains_promotes_and_stays_quiet_without_change(
    tmp_path: Path,
) -> None:
    report = tmp_path / "scenario.html"
    result = run(ScenarioOptions(customers=1000, progress=False), workdir=tmp_path, report=report)

    assert result["alerts_before_change"] == 0
    assert result["drift_detected_after_hours"] is not None
    assert 0 <= result["drift_detected_after_hours"] <= 24
    steps = [(s["action"], s["trigger"], s["passed"], s["why"]) for s in result["history"]]
    assert result["promoted"] is True, steps
    assert result["recall_new_scenario_before"] < 0.3
    assert result["recall_new_scenario_after"] > 0.9
    assert result["drift_checks_control"] > 600, "the control was checked every hour"
    assert result["false_alarms_control"] == 0, result["control_alerts"]

    steps = [(s["action"], s["trigger"], s["passed"]) for s in result["history"]]
    rollout = [
        ("request retraining", "drift", True),
        ("train challenger", "drift", True),
        ("start shadow", "drift", True),
        ("gate", "drift", True),
        ("start canary", "drift", True),
        ("promote to champion", "drift", True),
    ]
    positions = [steps.index(step) for step in rollout]
    assert positions == sorted(positions), steps
    gate = next(s for s in result["history"] if s["action"] == "gate")
    assert gate["why"].startswith("quality: average_precision")

    page = report.read_text()
    assert "<svg" in page
    assert "promote to champion" in page

    registry = f"sqlite:///{tmp_path / 'change' / 'registry' / 'mlflow.db'}"
    shown = CliRunner().invoke(app, ["models", "history", "fraud", "--registry", registry])
    assert shown.exit_code == 0, shown.output
    assert "promote to champion" in shown.output
    assert "start canary" in shown.output
