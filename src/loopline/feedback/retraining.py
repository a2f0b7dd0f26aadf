"""Retraining and promotion without a human: when to train, and how a new version goes
from challenger to champion.

:class:`RetrainingLoop` is ticked with the time (the wall clock in a service, a
simulation's clock in ``loopline scenario drift``). Idle, it watches three triggers of
the :class:`Policy`:

- schedule: the champion is ``every_days`` old;
- drift: the champion's drift monitor reports drifting features;
- performance: the champion's metric (the task's headline: average precision, NDCG@k,
  ...) over its last ``performance_days`` matured days fell under ``min_metric_ratio``
  of the one it was registered with.

Training uses the newest *mature* data: decisions old enough that their labels are in
(``maturity_days``, the dispute window). After a drift alert that means waiting until
``drift_data_days`` of the drifted period have matured: a model trained before then
has never seen what changed. The new version then goes through:

1. shadow: it scores all live traffic beside the champion, logged, never answering;
2. the gate (:func:`loopline.feedback.promotion.gate`): once ``min_shadow_days`` of
   shadowed predictions have matured, the paired metric on their labels, latency and
   errors; too little signal means wait (up to ``max_shadow_days``);
3. canary: it answers ``canary_percent`` of routing keys for ``canary_days``, with the
   service's canary guard ready to roll it back (expecting the flag rate its shadow run
   showed);
4. champion.

A refused or rolled-back challenger is retired, and a new one is trained no sooner than
``retry_days`` later if its trigger still holds. Every step goes to the registry's
history with what triggered it and why it passed or failed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from loopline.feedback.promotion import Evidence, GateResult, shadow_evidence
from loopline.feedback.promotion import gate as default_gate
from loopline.monitoring import DriftReport
from loopline.predictions import Outcomes
from loopline.registry import Registry
from loopline.tasks import Metric
from loopline.units import DAY_MS

log = logging.getLogger("loopline.feedback")


@dataclass(frozen=True, kw_only=True)
class Policy:
    """When to retrain, and how carefully to promote."""

    every_days: float = 30.0
    on_drift: bool = True
    min_metric_ratio: float = 0.8
    performance_days: int = 7
    min_support: int = 30  # matured rows with signal the performance trigger needs
    maturity_days: float = 7.0
    drift_data_days: float = 1.0
    min_shadow_days: float = 1.0
    max_shadow_days: float = 21.0
    canary_percent: float = 10.0
    canary_days: float = 1.0
    retry_days: float = 2.0


@dataclass(frozen=True)
class Trigger:
    """Why a retraining was asked for, and from when its data will be ready."""

    kind: str  # "schedule", "drift" or "performance"
    why: str
    ready_ms: int


class Stage(StrEnum):
    IDLE = "idle"
    SHADOW = "shadow"
    CANARY = "canary"


class Rollout(Protocol):
    """What the loop does to the serving side (:class:`loopline.serving.Deployment`)."""

    def champion(self) -> int:
        """The champion's version number."""
        ...

    def shadow(self, version: int) -> str:
        """Score all traffic with ``version`` beside the champion; its label."""
        ...

    def shadow_flag_ratio(self) -> float:
        """The challenger's flag rate over the champion's, on the shadowed traffic."""
        ...

    def canary(self, percent: float, expected_flag_ratio: float) -> None:
        """Let the shadowed challenger answer ``percent`` of routing keys, guarded."""
        ...

    def canary_alive(self) -> bool:
        """Whether the canary still answers (the guard has not rolled it back)."""
        ...

    def promote(self) -> None:
        """Make the challenger the champion (the old one kept for a rollback)."""
        ...

    def retire(self) -> None:
        """Stop the challenger: no shadow, no canary."""
        ...


@dataclass
class RetrainingLoop:
    """The policy and the rollout, ticked with the time (see the module docstring).

    Args:
        policy: The triggers and the rollout's pace.
        registry: Where versions live and every step is recorded; a version's
            registered metrics hold the baseline of ``metric``.
        model: The registered model's name.
        rollout: The serving side.
        train: ``train(now_ms, trigger)``: train on the newest mature data, register
            the version as ``challenger``, return its number.
        outcomes: The prediction log's labels and queries.
        metric: What matured performance and the gate compare (the task's headline).
        check_drift: One drift check of the champion (None: no verdict).
        latency: Both models' p99 time now, (champion, challenger), for the gate.
        gate: Judges a challenger's evidence (:func:`loopline.feedback.promotion.gate`
            with the application's options, or its own).
    """

    policy: Policy
    registry: Registry
    model: str
    rollout: Rollout
    train: Callable[[int, Trigger], int]
    outcomes: Outcomes
    metric: Metric
    check_drift: Callable[[], DriftReport | None] = lambda: None
    latency: Callable[[], tuple[float, float]] | None = None
    gate: Callable[[Evidence], GateResult] = default_gate
    stage: Stage = Stage.IDLE
    alerts: list[tuple[int, str, str]] = field(default_factory=list)  # (at, kind, why)
    drift_checks: int = 0  # checks that gave a verdict
    _champion_since: int | None = None
    _drift_since: int | None = None
    _performance_alert = False
    _performance_day = -1
    _trigger: Trigger | None = None
    _retry_after = 0
    _version = 0
    _label = ""
    _since = 0

    def matured(self, now_ms: int, days: int) -> tuple[float, int] | None:
        """The champion's metric and its support over the predictions of the last
        ``days`` matured days, with the labels known now (None: no signal yet)."""
        until = now_ms - int(self.policy.maturity_days * DAY_MS)
        joined = self.outcomes.joined(
            decided_from_ms=until - days * DAY_MS,
            decided_until_ms=until,
            labelled_before_ms=now_ms + 1,
            model_version=f"{self.model}:{self.rollout.champion()}",
        )
        arrays = self.metric.arrays(joined.outputs, joined.labels)  # unlabelled: not usable
        support = self.metric.support(arrays)
        return (self.metric.value(arrays), support) if support else None

    def baseline(self, version: int) -> float:
        """The metric ``version`` was registered with."""
        return self.registry.get(self.model, version).metrics[self.metric.name]

    def tick(self, now_ms: int) -> None:
        """Look at the triggers (idle) or move the rollout on."""
        if self._champion_since is None:
            self._champion_since = now_ms
        self._watch(now_ms)
        if self.stage is Stage.IDLE:
            self._idle(now_ms)
        elif self.stage is Stage.SHADOW:
            self._shadow(now_ms)
        else:
            self._canary(now_ms)

    def _record(
        self, now_ms: int, action: str, why: str, *, passed: bool = True, version: int = 0
    ) -> None:
        trigger = self._trigger.kind if self._trigger else "policy"
        self.registry.record(
            self.model, version or self._version, action, trigger=trigger, passed=passed,
            why=why, at_ms=now_ms,
        )  # fmt: skip
        log.info(action, extra={"why": why, "passed": passed, "at": _when(now_ms)})

    def _watch(self, now_ms: int) -> None:
        """The alerts: drift starting (and ending), matured performance falling."""
        p = self.policy
        report = self.check_drift()
        if report is not None:
            self.drift_checks += 1
            drifting = report.drifted
            if drifting and self._drift_since is None:
                self._drift_since = now_ms
                why = f"drift in {', '.join(drifting)} over {report.rows} recent decisions"
                self.alerts.append((now_ms, "drift", why))
            elif not drifting:
                self._drift_since = None
        if now_ms // DAY_MS == self._performance_day:  # matured days change once a day
            return
        start = now_ms - int((p.maturity_days + p.performance_days) * DAY_MS)
        assert self._champion_since is not None
        if start < self._champion_since:  # not yet a whole window of this champion's
            return
        self._performance_day = now_ms // DAY_MS
        got = self.matured(now_ms, p.performance_days)
        if got is not None:
            value, support = got
            floor = p.min_metric_ratio * self.baseline(self.rollout.champion())
            low = support >= p.min_support and value < floor
            if low and not self._performance_alert:
                name = self.metric.name
                why = (
                    f"matured {name} {value:.3f} over the last {p.performance_days} matured "
                    f"days (support {support}) under {floor:.3f} ({p.min_metric_ratio:.0%} of "
                    f"the champion's registered {name})"
                )
                self.alerts.append((now_ms, "performance", why))
            self._performance_alert = low

    def _due(self, now_ms: int) -> Trigger | None:
        p = self.policy
        assert self._champion_since is not None
        if p.on_drift and self._drift_since is not None:
            ready = self._drift_since + int((p.maturity_days + p.drift_data_days) * DAY_MS)
            return Trigger("drift", self._alert_why("drift"), ready)
        if self._performance_alert:
            return Trigger("performance", self._alert_why("performance"), now_ms)
        if now_ms - self._champion_since >= p.every_days * DAY_MS:
            why = f"the champion is {(now_ms - self._champion_since) / DAY_MS:.0f} days old"
            return Trigger("schedule", why, now_ms)
        return None

    def _alert_why(self, kind: str) -> str:
        return next(why for _, k, why in reversed(self.alerts) if k == kind)

    def _idle(self, now_ms: int) -> None:
        due = self._due(now_ms)
        if due is None:
            self._trigger = None
            return
        if self._trigger is None or self._trigger.kind != due.kind:
            self._trigger = due
            wait = (
                f"; training once its data has matured, from {_when(due.ready_ms)}"
                if due.ready_ms > now_ms
                else ""
            )
            self._record(
                now_ms, "request retraining", due.why + wait, version=self.rollout.champion()
            )
        self._trigger = due
        if now_ms < max(due.ready_ms, self._retry_after):
            return
        self._version = self.train(now_ms, due)
        self._record(now_ms, "train challenger", f"on data matured by {_when(now_ms)}")
        self._label = self.rollout.shadow(self._version)
        self._record(now_ms, "start shadow", "scoring all traffic beside the champion")
        self.stage, self._since = Stage.SHADOW, now_ms

    def _shadow(self, now_ms: int) -> None:
        p = self.policy
        matured = now_ms - int(p.maturity_days * DAY_MS)
        if matured < self._since + p.min_shadow_days * DAY_MS:
            return
        result = self._gate(now_ms)
        if result.wait and now_ms - self._since < p.max_shadow_days * DAY_MS:
            return
        self._record(now_ms, "gate", "; ".join(result.reasons), passed=result.passed)
        if not result.passed:
            self._retire(now_ms)
            return
        ratio = self.rollout.shadow_flag_ratio()
        self.rollout.canary(p.canary_percent, ratio)
        self._record(
            now_ms,
            "start canary",
            f"{p.canary_percent:g}% of keys for {p.canary_days:g} days; flag rate "
            f"{ratio:.2f}x the champion's in shadow, expected again",
        )
        self.stage, self._since = Stage.CANARY, now_ms

    def _gate(self, now_ms: int) -> GateResult:
        evidence = shadow_evidence(
            self.outcomes,
            self.metric,
            self._label,
            labelled_before_ms=now_ms + 1,
            decided_before_ms=now_ms - int(self.policy.maturity_days * DAY_MS),
            latency=self.latency,
        )
        return self.gate(evidence)

    def _canary(self, now_ms: int) -> None:
        p = self.policy
        if not self.rollout.canary_alive():  # the guard rolled it back (and recorded it)
            self._retire(now_ms)
            return
        if now_ms - self._since < p.canary_days * DAY_MS:
            return
        self.rollout.promote()
        assert self._trigger is not None
        self.registry.promote(
            self.model, self._version, "champion", trigger=self._trigger.kind, at_ms=now_ms,
            why=f"healthy canary for {p.canary_days:g} days at {p.canary_percent:g}% of keys",
        )  # fmt: skip
        self.stage, self._trigger = Stage.IDLE, None
        self._champion_since, self._drift_since, self._performance_alert = now_ms, None, False

    def _retire(self, now_ms: int) -> None:
        self.rollout.retire()
        self.stage = Stage.IDLE
        self._retry_after = now_ms + int(self.policy.retry_days * DAY_MS)


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")
