"""Model CI's platform pieces: the regression check at its tolerance edges, the paired
bootstrap, fingerprints, the canary guard on replayed requests, and the workflow file
running the same command as a laptop."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import typer.main
import yaml

from loopline.cli import app
from loopline.exceptions import ConfigError
from loopline.models import ServingModel
from loopline.ops import digest_files
from loopline.ops.ci import CiOptions, changes
from loopline.ops.regression import (
    Evaluation,
    Figure,
    Figures,
    Tolerances,
    check,
    paired_bootstrap,
)
from loopline.ops.replay import Replay, canary, shadow
from loopline.registry import Pinned, Signature
from loopline.serving import CanaryGuard, Deployment, Routing
from loopline.tasks import AveragePrecision

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "model-ci.yml"
F64 = npt.NDArray[np.float64]


def figures(overall: float, **slices: tuple[float, int]) -> Figures:
    return Figures(Figure(overall, 500), {k: Figure(*v) for k, v in slices.items()})


@pytest.mark.parametrize(
    ("candidate", "passed"),
    [(0.90, True), (0.89, True), (0.8899, False), (0.95, True), (0.0, False)],
)
def test_overall_fails_only_beyond_the_tolerance(candidate: float, passed: bool) -> None:
    [overall] = check(figures(0.90), figures(candidate), Tolerances(metric=0.01))
    assert (overall.scope, overall.judged, overall.passed) == ("overall", True, passed)
    assert overall.difference == pytest.approx(candidate - 0.90)


def test_a_slice_is_judged_with_its_own_tolerance_and_only_with_enough_support() -> None:
    tol = Tolerances(metric=0.01, slice=0.05, min_slice_support=30)
    champion = figures(0.9, small=(0.8, 29), edge=(0.8, 30), worse=(0.8, 400), nan=(math.nan, 0))
    candidate = figures(0.9, small=(0.1, 29), edge=(0.75, 30), worse=(0.7499, 400), nan=(0.5, 0))
    by_scope = {c.scope: c for c in check(champion, candidate, tol)}
    assert by_scope["small"].judged is False
    assert by_scope["small"].passed
    assert "not judged: support under 30" in by_scope["small"].why
    assert by_scope["edge"].judged
    assert by_scope["edge"].passed
    assert by_scope["worse"].judged
    assert not by_scope["worse"].passed
    assert "below by more than the tolerance 0.05" in by_scope["worse"].why
    assert not by_scope["nan"].judged
    assert by_scope["nan"].passed
    assert by_scope["overall"].passed


def test_support_is_the_smaller_of_the_two_models() -> None:
    champion = Figures(Figure(0.9, 500), {"s": Figure(0.9, 40)})
    candidate = Figures(Figure(0.9, 500), {"s": Figure(0.5, 20)})
    [_, s] = check(champion, candidate, Tolerances(min_slice_support=30))
    assert s.support == 20
    assert not s.judged


def test_bad_tolerances_name_their_option() -> None:
    with pytest.raises(ConfigError, match="--tolerance"):
        Tolerances(metric=-0.1)
    with pytest.raises(ConfigError, match="--slice-tolerance"):
        Tolerances(slice=1.5)
    with pytest.raises(ConfigError, match="--canary-percent"):
        CiOptions(canary_percent=0)


def _evaluation(y: F64, scores: F64, slices: dict[str, npt.NDArray[np.bool_]]) -> Evaluation:
    metric = AveragePrecision()
    arrays = metric.arrays([{"score": s} for s in scores], [{"": v} for v in y])
    return Evaluation(metric, arrays, slices)


def test_figures_and_the_paired_bootstrap_on_scored_rows() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.1).astype(np.float64)
    good = y + rng.normal(0, 0.5, len(y))
    noisy = y + rng.normal(0, 2.0, len(y))
    big = np.arange(len(y)) % 2 == 0
    a, b = _evaluation(y, good, {"even": big}), _evaluation(y, noisy, {"even": big})
    fa = a.figures()
    assert fa.overall.support == int(y.sum())
    assert fa.slices["even"].support == int(y[big].sum())
    boot = paired_bootstrap(a.metric, a.arrays, b.arrays, tolerance=0.01, resamples=200)
    assert boot.resamples == 200
    assert boot.high < 0  # the noisy model is worse on every resample's 95th percentile
    assert boot.below_tolerance > 0.95
    same = paired_bootstrap(a.metric, a.arrays, a.arrays, tolerance=0.01, resamples=50)
    assert (same.low, same.high, same.below_tolerance) == (0.0, 0.0, 0.0)


def test_fingerprints_change_with_a_file_and_only_then(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "notes.txt").write_text("ignored\n")
    first = digest_files([pkg], tmp_path)
    (pkg / "notes.txt").write_text("changed, still ignored\n")
    assert digest_files([pkg], tmp_path) == first
    (pkg / "a.py").write_text("x = 2\n")
    assert digest_files([pkg], tmp_path) != first
    with pytest.raises(ConfigError, match="no such file"):
        digest_files([tmp_path / "missing.py"])
    tags = {"ci.fingerprint.code": "1", "ci.fingerprint.data": "2"}
    assert changes({"code": "1", "data": "2"}, tags) == []
    assert changes({"code": "1", "data": "3", "config": "4"}, tags) == ["data", "config"]


@dataclass
class Scores:
    """A model whose score is its first input; ``fails_single_rows``: its primary
    engine fails on one-row calls (a fallback answers), as a live canary would see."""

    version: int
    fails_single_rows: bool = False
    name: str = "toy"
    pinned: Pinned | None = None

    def __post_init__(self) -> None:
        meta = {"review_threshold": 0.5}
        self.signature = Signature(task="binary", flavour="toy", inputs=("x",), meta=meta)

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def predict(self, x: F64) -> tuple[F64, bool]:
        return x[:, 0].copy(), self.fails_single_rows and len(x) == 1


def _replay(n: int = 4000) -> Replay:
    x = np.random.default_rng(1).random((n, 1))
    return Replay(
        keys=[f"key-{i % 400}" for i in range(n)],
        inputs=lambda model: x,
        acts=lambda model, s: s >= model.signature.meta["review_threshold"],
    )


def _deployment(challenger: Scores, rolled: list[str]) -> Deployment:
    models: dict[int, ServingModel] = {1: Scores(1), challenger.version: challenger}
    return Deployment(
        Routing(champion=models[1]),
        load=lambda ref: models[int(ref)],
        guard=CanaryGuard(),
        on_rollback=lambda label, why: rolled.append(f"{label}: {why}"),
    )


def test_a_healthy_challenger_stays_in_canary() -> None:
    rolled: list[str] = []
    deployment = _deployment(Scores(2), rolled)
    replay = _replay()
    ran = shadow(deployment, 2, replay, latency_allowance_ms=50.0)
    assert ran.passed
    assert ran.requests == 4000
    assert ran.flag_ratio == pytest.approx(1.0)
    result = canary(deployment, replay, 25)
    assert result.judged
    assert not result.rolled_back
    assert not rolled
    assert deployment.canary_alive()
    assert 700 < result.decisions["challenger"] < 1300  # about a quarter of the keys
    assert "found it healthy" in result.why


def test_a_failing_challenger_is_rolled_back_by_the_guard() -> None:
    rolled: list[str] = []
    deployment = _deployment(Scores(3, fails_single_rows=True), rolled)
    replay = _replay()
    assert shadow(deployment, 3, replay, latency_allowance_ms=50.0).passed
    result = canary(deployment, replay, 25)
    assert result.rolled_back
    assert result.judged
    assert not deployment.canary_alive()
    assert len(rolled) == 1
    assert rolled[0].startswith("toy:3: challenger model errors")
    assert result.decisions["challenger"] >= 200  # the guard's minimum before judging


def test_a_small_canary_says_the_guard_has_not_judged() -> None:
    deployment = _deployment(Scores(2), [])
    replay = _replay(600)
    shadow(deployment, 2, replay, latency_allowance_ms=50.0)
    result = canary(deployment, replay, 5)
    assert not result.judged
    assert not result.rolled_back
    assert "has not judged" in result.why


def _ci_command() -> Any:
    """``loopline ci fraud`` as the command line parser sees it."""
    group: Any = typer.main.get_command(app)
    return group.commands["ci"].commands["fraud"]


def test_the_workflow_runs_the_same_command_on_changes_to_code_features_and_data() -> None:
    flow = yaml.safe_load(WORKFLOW.read_text())
    on = flow[True]  # YAML 1.1 reads the key `on` as true
    for event in ("push", "pull_request"):
        paths = on[event]["paths"]
        for needed in ("src/loopline/training/**", "src/loopline/features/**", "data/**"):
            assert needed in paths
        assert "src/loopline/apps/fraud/**" in paths
    assert "workflow_dispatch" in on
    steps = flow["jobs"]["fraud"]["steps"]
    [run] = [s["run"] for s in steps if "loopline ci" in s.get("run", "")]
    assert run.startswith("loopline ci fraud --json --out ci-report")
    args = [*shlex.split(run.split("${{")[0])[3:], "--force"]
    context = _ci_command().make_context("fraud", args)  # the options parse as typed
    assert context.params["as_json"]
    assert context.params["force"]
    assert context.params["out"] == Path("ci-report")
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads[0]["with"]["path"].rstrip("/") == "ci-report"
    installs = " ".join(s.get("run", "") for s in steps)
    assert "pip install -e" in installs
    python = [s for s in steps if s.get("uses", "").startswith("actions/setup-python")]
    assert python[0]["with"]["python-version"] == "3.11"


def test_a_failed_rollout_clears_the_challenger_so_a_rerun_is_not_skipped(
    tmp_path: Path,
) -> None:
    from loopline.ops.ci import _alias, _clear_challenger, _Steps
    from loopline.registry import Bundle, Registry

    registry = Registry(root=tmp_path / "registry")
    packed = Bundle(Signature(task="binary", flavour="toy", inputs=("x",)), {"m.txt": b"m"})
    for _ in range(2):
        registry.register("toy", bundle=packed, metrics={}, params={}, tags={})
    registry.promote("toy", 1)
    registry.promote("toy", 2, "challenger", trigger="ci")
    _clear_challenger(_Steps(registry, "toy"), 2, "the canary guard rolled it back")
    assert _alias(registry, "toy", "challenger") is None  # what the skip check looks up
    assert registry.get("toy", "champion").version == 1
    last = registry.history("toy")[-1]
    assert (last.version, last.action, last.trigger) == (2, "clear challenger", "ci")
    registry.clear("toy", "challenger")  # nothing left to clear: nothing recorded
    assert registry.history("toy")[-1] == last
