"""Model CI: when what a model is made of changes, train it, check it against the
champion, register it and start its rollout, every step recorded in the registry.

``loopline ci APP`` runs these steps (an application supplies its pieces as a
:class:`CiApplication`):

1. fingerprint: hashes of the training code, the feature definitions, the data
   snapshot and the hyperparameters, against the ones recorded with the champion and
   the challenger; unchanged since either, nothing is done (``force`` runs anyway);
2. train a candidate, not registered yet;
3. evaluate the candidate and the champion on the application's fixed evaluation set,
   overall and per slice (:mod:`loopline.ops.regression`); a regression beyond the
   tolerances fails the run and nothing is registered;
4. register the candidate: ``challenger``, or ``champion`` when it is the first version;
5. shadow, then canary, on the fixed set's requests replayed through a
   :class:`loopline.serving.Deployment` (:mod:`loopline.ops.replay`).

The challenger is left in canary: promotion to champion stays with the retraining loop
(:class:`loopline.feedback.RetrainingLoop`, on matured labels of live traffic) or a
person (``loopline models promote``). Each step is recorded with
:meth:`loopline.registry.Registry.record`, trigger ``ci``, so ``loopline models history
MODEL`` shows it; steps before registration are recorded once the candidate has a
version (version 0 for a candidate that failed and was never registered).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from loopline.exceptions import ConfigError
from loopline.models import ServingModel, load
from loopline.ops.regression import Evaluation, Tolerances, check, paired_bootstrap
from loopline.ops.replay import Replay, canary, shadow
from loopline.registry import Bundle, ModelVersion, Pinned, Registry, RegistryError
from loopline.registry.bundle import sha256
from loopline.serving import Deployment, Routing

TRIGGER = "ci"
FINGERPRINT_TAG = "ci.fingerprint."  # + component: its hash, on each version CI registered


@dataclass(frozen=True)
class Candidate:
    """A trained model, not registered: its bundle, and how to register it (with extra
    version tags, and no alias: CI sets it; returns the version number)."""

    bundle: Bundle
    register: Callable[[Mapping[str, str]], int]
    summary: Mapping[str, Any] = field(default_factory=dict)


class CiApplication(Protocol):
    """What an application gives model CI."""

    @property
    def model(self) -> str:
        """The registered model's name."""
        ...

    def fingerprint(self) -> Mapping[str, str]:
        """Component (``code``, ``features``, ``data``, ``config``) -> its hash."""
        ...

    def train(self) -> Candidate:
        """Train a candidate on the current code, features and data."""
        ...

    def evaluate(self, model: ServingModel) -> Evaluation:
        """Score ``model`` on the fixed evaluation set."""
        ...

    def replay(self) -> Replay:
        """The fixed evaluation set's requests, for the shadow and canary stages."""
        ...


@dataclass(frozen=True, kw_only=True)
class CiOptions:
    """How strict the checks are and how the rollout starts."""

    tolerances: Tolerances = field(default_factory=Tolerances)
    canary_percent: float = 5.0
    force: bool = False
    resamples: int = 1000
    seed: int = 0
    max_latency_ratio: float = 1.25
    latency_allowance_ms: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.canary_percent <= 100:
            raise ConfigError(f"--canary-percent must be in (0, 100]; got {self.canary_percent}.")
        if self.resamples < 0:
            raise ConfigError(f"resamples must be 0 or more; got {self.resamples}.")


def changes(fingerprint: Mapping[str, str], tags: Mapping[str, str]) -> list[str]:
    """The components whose hash differs from a version's ``ci.fingerprint.*`` tags (all
    of them when it has none)."""
    return [k for k, v in fingerprint.items() if tags.get(FINGERPRINT_TAG + k) != v]


def candidate_model(name: str, bundle: Bundle) -> ServingModel:
    """Load an unregistered bundle as version 0, the way serving loads a version."""
    files = bundle.contents()
    with tempfile.TemporaryDirectory() as tmp:
        for fname, data in files.items():
            (Path(tmp) / fname).write_bytes(data)
        return load(Pinned(name, 0, Path(tmp), {f: sha256(b) for f, b in files.items()}))


class _Steps:
    """The run's steps, recorded in the registry; held until there is a version to
    record them against."""

    def __init__(self, registry: Registry, model: str) -> None:
        self.registry, self.model = registry, model
        self.held: list[tuple[int, str, bool, str]] = []
        self.done: list[dict[str, Any]] = []

    def hold(self, action: str, why: str, *, passed: bool = True) -> None:
        self.held.append((time.time_ns() // 1_000_000, action, passed, why))
        self.done.append({"action": action, "passed": passed, "why": why})

    def flush(self, version: int) -> None:
        for at_ms, action, passed, why in self.held:
            self.registry.record(
                self.model, version, action, trigger=TRIGGER, passed=passed, why=why, at_ms=at_ms
            )
        for step in self.done[len(self.done) - len(self.held) :]:
            step["version"] = version
        self.held.clear()

    def record(self, version: int, action: str, why: str, *, passed: bool = True) -> None:
        self.hold(action, why, passed=passed)
        self.flush(version)


def _alias(registry: Registry, model: str, alias: str) -> ModelVersion | None:
    try:
        return registry.get(model, alias)
    except RegistryError:
        return None


def run_ci(
    app: CiApplication,
    registry: Registry,
    options: CiOptions,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The CI steps (see the module docstring); the run's summary, with ``passed``."""
    started = time.perf_counter()
    model = app.model
    steps = _Steps(registry, model)
    champion, challenger = (
        _alias(registry, model, "champion"),
        _alias(registry, model, "challenger"),
    )
    summary: dict[str, Any] = {"model": model, "champion": champion.version if champion else None}
    progress("fingerprinting the code, features and data")
    prints = dict(app.fingerprint())
    summary["fingerprint"] = prints
    same = next((v for v in (champion, challenger) if v and not changes(prints, v.tags)), None)
    if same is not None and not options.force:
        why = f"unchanged since v{same.version} ({', '.join(same.aliases)}): skipped"
        steps.record(same.version, "fingerprint", why)
        return _finish(summary, steps, "skipped", True, started)
    changed = changes(prints, champion.tags) if champion else list(prints)
    why = f"changed since the champion: {', '.join(changed) or 'nothing (forced)'}"
    steps.hold("fingerprint", why if champion else "no champion yet")
    progress("training the candidate")
    candidate = app.train()
    steps.hold("train candidate", ", ".join(f"{k} {v}" for k, v in candidate.summary.items()))
    progress("evaluating the candidate and the champion on the fixed set")
    mine = app.evaluate(candidate_model(model, candidate.bundle))
    serving = load(registry.resolve(model, "champion")) if champion else None
    theirs = app.evaluate(serving) if serving is not None else None
    passed = _evaluate(mine, theirs, options, steps, summary)
    if not passed:
        steps.flush(0)
        return _finish(summary, steps, "failed", False, started)
    progress("registering the candidate")
    tags = {FINGERPRINT_TAG + k: v for k, v in prints.items()}
    version = candidate.register(tags | {"ci.evaluation.sha256": mine.set_sha256})
    steps.hold("register", f"v{version}, with its fingerprint and evaluation set's hash")
    steps.flush(version)
    alias = "challenger" if champion else "champion"
    why = "passed CI" if champion else "the first version"
    registry.promote(model, version, alias, trigger=TRIGGER, why=why)
    steps.done.append(
        {"action": f"promote to {alias}", "passed": True, "why": why, "version": version}
    )
    summary["version"] = version
    if serving is None:
        return _finish(summary, steps, "champion", True, started)
    deployment = Deployment(
        Routing(champion=serving), load=lambda ref: load(registry.resolve(model, ref))
    )
    status, passed = _rollout(app, deployment, options, steps, summary, progress)
    return _finish(summary, steps, status, passed, started)


def _evaluate(
    mine: Evaluation,
    theirs: Evaluation | None,
    options: CiOptions,
    steps: _Steps,
    summary: dict[str, Any],
) -> bool:
    tol = options.tolerances
    mine_f = mine.figures()
    report: dict[str, Any] = {
        "set": mine.set_name, "set_sha256": mine.set_sha256, "metric": mine.metric.name,
        "tolerance": tol.metric, "slice_tolerance": tol.slice,
        "min_slice_support": tol.min_slice_support, "candidate_extra": dict(mine.extra),
    }  # fmt: skip
    summary["evaluation"] = report
    if theirs is None:
        report["checks"] = [
            {"scope": s, "candidate": f.value, "support": f.support}
            for s, f in [("overall", mine_f.overall), *mine_f.slices.items()]
        ]
        steps.hold("evaluate", f"no champion to compare with: {mine.metric.name} "
                   f"{mine_f.overall.value:.4f} on {mine.set_name}")  # fmt: skip
        return True
    if theirs.set_sha256 != mine.set_sha256:
        raise ConfigError("The champion and the candidate were evaluated on different sets.")
    checks = check(theirs.figures(), mine_f, tol)
    report["champion_extra"] = dict(theirs.extra)
    report["checks"] = [vars(c) | {"difference": c.difference} for c in checks]
    boot = paired_bootstrap(
        mine.metric, theirs.arrays, mine.arrays, tolerance=tol.metric,
        resamples=options.resamples, seed=options.seed,
    )  # fmt: skip
    report["bootstrap"] = vars(boot)
    failed = [c for c in checks if not c.passed]
    overall, slices = checks[0], checks[1:]
    noise = f"paired bootstrap 90% interval of the difference [{boot.low:+.4f}, {boot.high:+.4f}]"
    steps.hold(
        "evaluate",
        f"{overall.why}; {noise}; {len(failed)} of {sum(c.judged for c in checks)} judged "
        f"checks failed on {mine.set_name} (sha256 {mine.set_sha256[:12]})",
        passed=not failed,
    )
    for c in slices:
        if not c.passed:
            steps.hold(f"evaluate slice {c.scope}", c.why, passed=False)
    return not failed


def _rollout(
    app: CiApplication,
    deployment: Deployment,
    options: CiOptions,
    steps: _Steps,
    summary: dict[str, Any],
    progress: Callable[[str], None],
) -> tuple[str, bool]:
    """Shadow, then canary, on the replayed fixed set; the run's status."""
    version = summary["version"]
    rollbacks: list[str] = []
    deployment.on_rollback = lambda label, why: rollbacks.append(why)
    replay = app.replay()
    progress("shadow: replaying the fixed set's requests through both models")
    ran = shadow(
        deployment, version, replay, max_latency_ratio=options.max_latency_ratio,
        latency_allowance_ms=options.latency_allowance_ms,
    )  # fmt: skip
    summary["shadow"] = vars(ran)
    steps.record(version, "start shadow", ran.why, passed=ran.passed)
    if not ran.passed:
        deployment.retire()
        _clear_challenger(steps, version, "its shadow failed")
        return "shadow failed", False
    progress(f"canary: {options.canary_percent:g}% of routing keys, guarded")
    guarded = canary(deployment, replay, options.canary_percent)
    summary["canary"] = vars(guarded)
    steps.record(version, "start canary", guarded.why)
    for why in rollbacks:
        steps.record(version, "roll canary back", why, passed=False)
    if guarded.rolled_back:
        _clear_challenger(steps, version, "the canary guard rolled it back")
        return "rolled back", False
    return "canary", True


def _clear_challenger(steps: _Steps, version: int, why: str) -> None:
    """A failed rollout leaves no challenger: a rerun with nothing changed must not find
    the failed version and call the run skipped (it trains and checks it again)."""
    steps.registry.clear(steps.model, "challenger", trigger=TRIGGER, why=why)
    steps.done.append(
        {"action": "clear challenger", "passed": False, "why": why, "version": version}
    )


def _finish(
    summary: dict[str, Any], steps: _Steps, status: str, passed: bool, started: float
) -> dict[str, Any]:
    summary.update(status=status, passed=passed, steps=steps.done)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def run_ci_and_report(
    app: CiApplication, registry: Registry, options: CiOptions, *, out: Path, progress: bool
) -> dict[str, Any]:
    """:func:`run_ci` with a spinner naming each step (on stderr), its summary and report
    written under ``out`` (:mod:`loopline.ops.ci_report`); their paths in ``files``."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from loopline.ops import ci_report

    columns = SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()
    bar = Progress(*columns, console=Console(stderr=True), disable=not progress)
    with bar:
        task = bar.add_task("starting", total=None)
        summary = run_ci(app, registry, options, lambda text: bar.update(task, description=text))
    summary["files"] = [str(p) for p in ci_report.write(summary, out)]
    return summary


def show_ci(summary: Mapping[str, Any]) -> str:
    """The run in a few lines: the verdict, each step, the files written."""
    verdict = "passed" if summary["passed"] else "FAILED"
    lines = [f"model CI of {summary['model']}: {verdict} ({summary['status']})"]
    for step in summary["steps"]:
        mark = "ok  " if step["passed"] else "FAIL"
        lines.append(f"  {mark} {step['action']}: {step['why']}")
    lines += [f"  wrote {f}" for f in summary.get("files", [])]
    return "\n".join(lines)
