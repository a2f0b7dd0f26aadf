"""The scale-out profile on real local servers: `loopline up --profile scale` starts a
noida-db broker, redis-server, PostgreSQL and an MLflow tracking server; the fraud demo
runs on them with 2 feature workers and 2 scorers over 4 partitions; `loopline down`
stops them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from loopline.cli import app
from loopline.settings import load_settings


def test_up_demo_down(tmp_path: Path) -> None:
    root = tmp_path / "scale"
    runner = CliRunner()
    started = runner.invoke(app, ["up", "--profile", "scale", "--dir", str(root)])
    assert started.exit_code == 0, started.output
    try:
        settings = load_settings(root / "settings.toml")
        assert settings.scale_out
        assert (settings.partitions, settings.workers, settings.scorers) == (4, 2, 2)
        twice = runner.invoke(app, ["up", "--profile", "scale", "--dir", str(root)])
        assert twice.exit_code == 1
        assert "already up" in str(twice.exception) + twice.output

        ran = runner.invoke(app, ["demo", "fraud", "--profile", "scale", "--json", "--settings",
                                  str(root / "settings.toml"), "--customers", "500",
                                  "--hours", "4"])  # fmt: skip
        assert ran.exit_code == 0, f"{ran.output}\n{ran.exception}"
        summary = json.loads(ran.output.strip().splitlines()[-1])
        assert summary["exactly_one_decision_each"] is True
        assert summary["decisions"] == summary["http_requests"] > 50
        assert summary["online_offline_mismatches"] == 0
        assert summary["promoted"] is True, summary["model_versions"]
        assert (summary["scorers"], summary["feature_workers"]) == (2, 2)

        again = runner.invoke(app, ["demo", "fraud", "--profile", "scale", "--settings",
                                    str(root / "settings.toml")])  # fmt: skip
        assert again.exit_code == 1
        assert "fresh one" in str(again.exception)
    finally:
        stopped = runner.invoke(app, ["down", "--dir", str(root)])
    assert stopped.exit_code == 0, stopped.output
    assert "4 servers were running" in stopped.output
