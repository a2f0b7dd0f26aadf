"""The scale-out profile on real local servers: `loopline up --profile scale` starts a
noida-db broker, redis-server, PostgreSQL and an MLflow tracking server; the fraud demo
runs on them with 2 feature workers and 2 scorers over 4 partitions; `loopline down`
stops them. Every server but the broker requires this run's password, which only the
settings file (mode 0600) holds."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from urllib.parse import urlsplit

from typer.testing import CliRunner

from loopline.cli import app
from loopline.settings import Settings, load_settings


def test_up_demo_down(tmp_path: Path) -> None:
    root = tmp_path / "scale"
    runner = CliRunner()
    started = runner.invoke(app, ["up", "--profile", "scale", "--dir", str(root)])
    assert started.exit_code == 0, started.output
    try:
        settings = load_settings(root / "settings.toml")
        assert settings.scale_out
        _check_credentials(root, settings, started.output)
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


def _check_credentials(root: Path, settings: Settings, output: str) -> None:
    """Passwords in the settings file (0600) only: not in what up printed, not in
    servers.json, not in the settings' repr; the broker's lack of one stated."""
    text = (root / "settings.toml").read_text()
    assert stat.S_IMODE((root / "settings.toml").stat().st_mode) == 0o600
    assert "the broker has no authentication; it listens on loopback only" in text
    urls = (settings.features, settings.decisions, settings.registry)
    passwords = [urlsplit(url).password for url in urls if url is not None]
    assert len(passwords) == 3
    assert all(passwords)
    recorded = (root / "servers.json").read_text()
    for password in passwords:
        assert password is not None
        assert password in text
        assert password not in output
        assert password not in recorded
        assert password not in repr(settings)
    assert output.count(":***@") == 3, output
