"""``loopline ci fraud`` end to end on embedded defaults: the first run makes a champion,
an unchanged rerun is skipped, a run on new data registers a challenger and starts its
shadow and canary, and a crippled candidate fails its evaluation and registers nothing.
Every step is in the registry's history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from loopline.cli import app
from loopline.registry import Registry, Step

# tiny data and a small model: the whole sequence trains three models in seconds
SMALL = "num_boost_round = 60\nnum_leaves = 15\nthreads = 1\n"
CRIPPLED = "num_boost_round = 2\nnum_leaves = 2\nlearning_rate = 0.01\nfeature_fraction = 0.1\n"
SCALE = ["--customers", "100", "--days", "90", "--canary-percent", "20"]


@dataclass
class Run:
    code: int
    summary: dict[str, Any]
    history: list[Step]  # the steps this run added


@dataclass
class Runs:
    root: Path
    first: Run
    again: Run
    second: Run
    crippled: Run
    registry: Registry


def _ci(root: Path, registry: Registry, config: str, *args: str) -> Run:
    (root / "model.toml").write_text(config)
    before = len(registry.history("fraud")) if registry.names() else 0
    result = CliRunner().invoke(
        app, ["ci", "fraud", *SCALE, "--config", "model.toml", "--json", *args]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return Run(result.exit_code, summary, registry.history("fraud")[before:])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    root = tmp_path_factory.mktemp("ci")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # the embedded defaults: .loopline/ here
        mp.delenv("LOOPLINE_REGISTRY", raising=False)
        mp.delenv("LOOPLINE_SETTINGS", raising=False)
        registry = Registry()
        first = _ci(root, registry, SMALL)
        again = _ci(root, registry, SMALL)
        second = _ci(root, registry, SMALL, "--seed", "1", "--out", "second")
        crippled = _ci(root, registry, CRIPPLED, "--seed", "1")
        yield Runs(root, first, again, second, crippled, registry)


def test_the_first_run_makes_the_champion(runs: Runs) -> None:
    run = runs.first
    assert (run.code, run.summary["status"], run.summary["version"]) == (0, "champion", 1)
    actions = [s.action for s in run.history]
    assert actions == [
        "fingerprint", "train candidate", "evaluate", "register", "promote to champion"
    ]  # fmt: skip
    assert {s.trigger for s in run.history} == {"ci"}
    assert all(s.version == 1 and s.passed for s in run.history)
    tags = runs.registry.get("fraud", 1).tags
    assert set(run.summary["fingerprint"]) == {"code", "features", "data", "config"}
    for component, digest in run.summary["fingerprint"].items():
        assert tags[f"ci.fingerprint.{component}"] == digest
    assert tags["ci.evaluation.sha256"] == run.summary["evaluation"]["set_sha256"]


def test_nothing_changed_nothing_done(runs: Runs) -> None:
    run = runs.again
    assert (run.code, run.summary["status"]) == (0, "skipped")
    assert [(s.action, s.version) for s in run.history] == [("fingerprint", 1)]
    assert "unchanged since v1" in run.history[0].why


def test_new_data_registers_a_challenger_and_starts_shadow_and_canary(runs: Runs) -> None:
    run = runs.second
    assert (run.code, run.summary["status"], run.summary["version"]) == (0, "canary", 2)
    assert [s.action for s in run.history] == [
        "fingerprint", "train candidate", "evaluate", "register", "promote to challenger",
        "start shadow", "start canary",
    ]  # fmt: skip
    assert all(s.version == 2 and s.passed and s.trigger == "ci" for s in run.history)
    assert run.history[0].why == "changed since the champion: data"
    v2 = runs.registry.get("fraud", "challenger")
    assert v2.version == 2
    assert runs.registry.get("fraud", "champion").version == 1
    evaluation = run.summary["evaluation"]
    overall = evaluation["checks"][0]
    assert overall["scope"] == "overall"
    assert overall["judged"]
    assert overall["support"] > 100
    assert {"card present", "card not present", "scenario card_testing"} <= {
        c["scope"] for c in evaluation["checks"]
    }
    assert evaluation["set_sha256"] == runs.first.summary["evaluation"]["set_sha256"]
    canary = run.summary["canary"]
    assert canary["judged"]
    assert not canary["rolled_back"]
    assert canary["decisions"]["challenger"] >= 200  # the guard's minimum on each arm
    shadow = run.summary["shadow"]
    assert shadow["passed"]
    assert 0.5 < shadow["flag_ratio"] < 2
    out = runs.root / "second"
    assert json.loads((out / "summary.json").read_text())["version"] == 2
    report = (out / "report.md").read_text()
    assert "| scenario card_testing |" in report
    assert "start canary" in report


def test_a_crippled_candidate_fails_and_registers_nothing(runs: Runs) -> None:
    run = runs.crippled
    assert (run.code, run.summary["status"], run.summary["passed"]) == (1, "failed", False)
    assert [v.version for v in runs.registry.versions("fraud")] == [1, 2]
    assert runs.registry.get("fraud", "challenger").version == 2
    failed = [s for s in run.history if not s.passed]
    assert failed[0].action == "evaluate"
    assert "overall" in failed[0].why
    assert "below by more than the tolerance 0.01" in failed[0].why
    slices = [s.action for s in failed[1:]]
    assert "evaluate slice card present" in slices
    assert all(s.version == 0 and s.trigger == "ci" for s in run.history)
    assert "start shadow" not in [s.action for s in run.history]


def test_models_history_shows_the_ci_steps(runs: Runs) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(runs.root)
        result = CliRunner().invoke(app, ["models", "history", "fraud", "--json"])
    assert result.exit_code == 0, result.output
    steps = [json.loads(line) for line in result.stdout.splitlines()]
    canary = [s for s in steps if s["action"] == "start canary"]
    assert len(canary) == 1
    assert canary[0]["version"] == 2
    assert canary[0]["trigger"] == "ci"


def test_a_bad_option_is_named() -> None:
    result = CliRunner().invoke(app, ["ci", "fraud", "--tolerance", "2"])
    assert result.exit_code == 2
    assert "--tolerance" in result.output
