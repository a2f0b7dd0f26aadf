"""The command line: the demos run end to end and report honestly."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from loopline.cli import app


def test_demo_events_runs_and_accounts_for_every_record(tmp_path: Path) -> None:
    result = CliRunner(env={"COLUMNS": "160"}).invoke(
        app, ["demo", "events", "--workdir", str(tmp_path / "demo"), "--transactions", "20000"]
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"every record decoded or dead-lettered\s*│\s*yes", result.output)
    assert re.search(r"dead letters \(transactions.dlq\), distinct\s*│\s*20\b", result.output)
    assert (tmp_path / "demo" / "events.db").exists()


def test_version() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == "0.1.0"


def test_make_demo_runs_the_command_the_makefile_names(tmp_path: Path) -> None:
    """`make demo` (`loopline demo fraud`) runs every stage and says so, here at 500
    customers: the HTTP replay answered in full, the new pattern's challenger promoted,
    the summary's figures, the report written."""
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    (line,) = [ln for ln in makefile.splitlines() if "loopline demo" in ln]
    args = line.split("loopline", 1)[1].split()
    report = tmp_path / "demo.html"
    result = CliRunner().invoke(
        app, [*args, "--json", "--customers", "500", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["promoted"] is True
    assert summary["http_requests"] > 500
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] < 1000
    assert summary["throughput_tps"] > 100
    assert 0.2 < summary["average_precision"] <= 1
    assert summary["drift_alerts"] >= 1
    assert summary["model_versions"] == ["fraud:1", "fraud:2"]
    assert set(summary["decisions"]) <= {"approve", "review", "decline"}
    assert "<svg" in report.read_text()


def test_events_info_and_tail(tmp_path: Path) -> None:
    from loopline.events import EmbeddedLog, Message

    log = EmbeddedLog(tmp_path / "e.db")
    log.create_topic("payments", partitions=2)
    log.append_many("payments", [Message(f"v{i}".encode(), timestamp_ms=i) for i in range(6)])
    log.close()
    url = f"file://{tmp_path / 'e.db'}"
    info = CliRunner().invoke(app, ["events", "info", url, "payments"])
    assert info.exit_code == 0, info.output
    assert info.output.splitlines() == ["payments[0] end offset 3", "payments[1] end offset 3"]
    tail = CliRunner().invoke(app, ["events", "tail", url, "payments", "--last", "2"])
    assert tail.output.splitlines() == ["1\t2\t-\tv2", "2\t4\t-\tv4"]
    missing = CliRunner().invoke(app, ["events", "info", url, "nope"])
    assert missing.exit_code != 0
    assert "'nope' does not exist" in str(missing.exception)


def test_bench_events_prints_the_required_json_keys() -> None:
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "events",
            "--backend",
            "embedded",
            "--events",
            "2000",
            "--repeats",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert {"append_events_per_s", "consume_events_per_s", "append_p99_ms"} <= report.keys()
    assert report["events"] == 2000


def test_serve_key_makes_expiring_keys_and_revokes_them(tmp_path: Path) -> None:
    from loopline.serving import KeyRing

    keys = tmp_path / "keys.json"
    made = CliRunner().invoke(
        app, ["serve", "key", "--name", "ci", "--scope", "score", "--scope", "detail",
              "--keys", str(keys), "--expires-days", "1"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    key = made.output.strip()
    assert key.startswith("ll_")
    assert key not in keys.read_text(), "only the digest is stored"
    found = KeyRing.load(keys).identify(key)
    assert found is not None
    assert found.scopes == {"score", "detail"}
    assert found.expires_ms is not None
    revoked = CliRunner().invoke(
        app, ["serve", "key", "--name", "ci", "--revoke", "--keys", str(keys)]
    )
    assert revoked.exit_code == 0, revoked.output
    assert KeyRing.load(keys).identify(key) is None
