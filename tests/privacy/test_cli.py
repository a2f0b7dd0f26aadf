"""``loopline erase --subject ID`` on an embedded state folder."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from loopline.events import EmbeddedLog
from loopline.privacy.cli import register
from tests.privacy import seed
from tests.privacy.seed import A


def test_erase_command_prints_the_audit_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    log = EmbeddedLog(state / "events.db")
    seed.seed_events(log)
    log.close()
    monkeypatch.setenv("LOOPLINE_STATE", str(state))
    app = typer.Typer()
    register(app, {"fraud": "loopline.apps.fraud.erasure:erase_with_settings"})
    app.command("noop")(lambda: None)  # a group, so "erase" is a subcommand

    result = CliRunner().invoke(app, ["erase", "--subject", A.id])

    assert result.exit_code == 0, result.output
    line = json.loads(result.output)
    assert line["counts"]["event log"] == 5
    assert A.id not in result.output
    assert (state / "erasures.jsonl").exists()
