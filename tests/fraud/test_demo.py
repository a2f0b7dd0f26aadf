"""`loopline demo fraud` runs every stage and says so: the summary's figures, the HTTP
replay answered in full, the new pattern's challenger promoted, the report written."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from loopline.cli import app


def test_the_demo_runs_every_stage_and_prints_its_summary(tmp_path: Path) -> None:
    report = tmp_path / "demo.html"
    result = CliRunner().invoke(
        app, ["demo", "fraud", "--json", "--customers", "500", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["promoted"] is True
    assert summary["http_requests"] > 500
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] < 1000
    assert summary["throughput_tps"] > 100
    assert 0.3 < summary["average_precision"] <= 1
    assert summary["drift_alerts"] >= 1
    assert summary["model_versions"] == ["fraud:1", "fraud:2"]
    assert set(summary["decisions"]) <= {"approve", "review", "decline"}
    assert "<svg" in report.read_text()
