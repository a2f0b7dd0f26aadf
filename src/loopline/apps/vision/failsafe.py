"""The fail-safe of the camera pipeline (capture, preprocess, detect, track, publish), after
Apollo's Monitor and Guardian and Autoware's diagnostics and MRM handler.

:class:`~loopline.apps.vision.inputs.InputMonitor` checks every frame (frozen, black,
blurred, frame rate, out-of-distribution) and every frame's detections (low confidence),
each check debounced K-of-N. :class:`Supervisor` watches each stage's heartbeats and each
input check with a :class:`~loopline.monitoring.Watchdog`, reduces them to one level and
requests the minimal-risk manoeuvre:

- WARN: none (degraded, logged);
- ERROR: a comfortable stop;
- an emergency stop on a critical stage's TIMEOUT, on faults in two independent groups (the
  input checks count with the capture stage: one camera), or on an ERROR that persists for
  ``escalate_after_ms`` in a comfortable stop;
- never from an emergency stop back to a comfortable one; back to none only once the level
  has been OK for ``recover_after_ms`` without a break.

Every request records the onset of the fault that caused it (:attr:`Request.reaction_ms`).
Capture timestamps and the supervisor's clock must share one time base, in milliseconds.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from loopline.apps.vision.boxes import Detections
from loopline.apps.vision.inputs import CHECKS, CheckResult, Frame, InputMonitor
from loopline.exceptions import ConfigError
from loopline.monitoring import Health, Level, Status, Watchdog, monotonic_ms

log = logging.getLogger("loopline.apps.vision")


class Manoeuvre(IntEnum):
    """The minimal-risk manoeuvre requested from the planner, from mildest to hardest."""

    NONE = 0
    COMFORTABLE_STOP = 1
    EMERGENCY_STOP = 2


class Request(NamedTuple):
    """A manoeuvre requested at ``t_ms`` because of ``component``'s fault, which began at
    ``fault_ms`` (for a return to ``NONE``: when the level last became OK)."""

    t_ms: int
    manoeuvre: Manoeuvre
    fault_ms: int
    component: str
    reason: str

    @property
    def reaction_ms(self) -> int:
        return self.t_ms - self.fault_ms


class Moment(NamedTuple):
    """One entry of the timeline: a change of level, manoeuvre or faulty components."""

    t_ms: int
    level: Level
    manoeuvre: Manoeuvre
    reasons: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class FailsafeConfig:
    """The stages watched, their heartbeat timeout and the manoeuvre policy."""

    stages: tuple[str, ...] = ("capture", "preprocess", "detect", "track", "publish")
    critical: tuple[str, ...] = ("capture", "detect", "track")  # TIMEOUT: emergency stop
    stage_timeout_ms: int = 150  # 4.5 periods at 30 fps: a missed deadline and jitter pass
    input_timeout_ms: int = 500
    escalate_after_ms: int = 2000
    recover_after_ms: int = 3000
    timeline_size: int = 4096

    def __post_init__(self) -> None:
        if not set(self.critical) <= set(self.stages):
            raise ConfigError(f"FailsafeConfig.critical {self.critical} must be among the "
                              f"stages {self.stages}.")  # fmt: skip
        numbers = ("stage_timeout_ms", "input_timeout_ms", "escalate_after_ms",
                   "recover_after_ms", "timeline_size")  # fmt: skip
        for name in numbers:
            if getattr(self, name) <= 0:
                raise ConfigError(f"FailsafeConfig.{name} must be > 0. Got {getattr(self, name)}.")


class Supervisor:
    """The Guardian: stage heartbeats and input checks in, one manoeuvre out.

    Stages call :meth:`beat` (from any thread), the stage that preprocesses frames
    :meth:`observe_frame`, the detector's :meth:`observe_detections` (or its check times
    out), and a supervisor loop :meth:`step`, which returns the manoeuvre to request;
    :meth:`arm` starts every heartbeat clock when the pipeline starts.

    Args:
        config: The stages and the policy.
        monitor: The input checks (without a reference, the ood check stays OK).
        clock: Milliseconds now, the time base of the capture timestamps too.
    """

    def __init__(
        self,
        *,
        config: FailsafeConfig | None = None,
        monitor: InputMonitor | None = None,
        clock: Callable[[], int] = monotonic_ms,
    ) -> None:
        self.config, self.monitor, self.clock = config, monitor, clock
        self._config = cfg = config or FailsafeConfig()
        self._monitor = monitor or InputMonitor()
        self.watchdog = Watchdog(max_changes=cfg.timeline_size, clock=clock)
        for stage in cfg.stages:
            self.watchdog.register(stage, timeout_ms=cfg.stage_timeout_ms)
        for check in CHECKS:
            self.watchdog.register(f"input.{check}", timeout_ms=cfg.input_timeout_ms)
        self._lock = threading.Lock()
        self.manoeuvre = Manoeuvre.NONE
        self._entered_ms = clock()
        self._ok_since: int | None = self._entered_ms  # first check of the current run of OK
        self._error_since: int | None = None  # first check of the current run of errors
        self._requests: deque[Request] = deque(maxlen=cfg.timeline_size)  # bounded too
        self._timeline: deque[Moment] = deque(maxlen=cfg.timeline_size)
        self._last_key: tuple[Level, Manoeuvre, tuple[tuple[str, Level], ...]] | None = None

    def arm(self, now_ms: int | None = None) -> None:
        """Every stage and check starts its heartbeat clock now (a pipeline about to run):
        the time spent setting up before is nobody's timeout."""
        now = self.clock() if now_ms is None else now_ms
        for component in self.watchdog.components:
            self.watchdog.beat(component, Level.OK, "armed", now)

    def beat(
        self, stage: str, level: Level = Level.OK, message: str = "", now_ms: int | None = None
    ) -> None:
        """A heartbeat of ``stage``, with its own level and why."""
        self.watchdog.beat(stage, level, message, now_ms)

    def observe_frame(self, frame: Frame, t_ms: int) -> list[CheckResult]:
        """Run the input checks on the frame captured at ``t_ms``; each beats its component."""
        results = self._monitor.check_one(frame, t_ms)
        for r in results:
            self.watchdog.beat(f"input.{r.name}", r.level, r.reason, t_ms, onset_ms=r.onset_ms)
        return results

    def observe_detections(self, detections: Detections, t_ms: int) -> CheckResult:
        """Run the confidence check on the detections of the frame captured at ``t_ms``."""
        r = self._monitor.check_detections(detections, t_ms)
        self.watchdog.beat("input.confidence", r.level, r.reason, t_ms, onset_ms=r.onset_ms)
        return r

    def step(self, now_ms: int | None = None) -> Manoeuvre:
        """Check the watchdog and request the manoeuvre the rules call for."""
        now = self.clock() if now_ms is None else now_ms
        with self._lock:
            health = self.watchdog.check(now)
            errors = [s for s in health.faults if s.level >= Level.ERROR]
            self._error_since = _since(self._error_since, now) if errors else None
            self._ok_since = _since(self._ok_since, now) if health.level is Level.OK else None
            wanted, cause, rule = self._decide(errors, now)
            ok_ms = None if self._ok_since is None else now - self._ok_since
            if wanted > self.manoeuvre and cause is not None:
                why = f"{rule}: {cause.message}"
                self._request(now, wanted, cause.since_ms, cause.component, why)
            elif self.manoeuvre and ok_ms is not None and ok_ms >= self._config.recover_after_ms:
                self._request(now, Manoeuvre.NONE, now - ok_ms, "", f"recovered: OK for {ok_ms} ms")
            self._note(now, health)
            return self.manoeuvre

    def requests(self) -> list[Request]:
        """Every manoeuvre requested, and every return to none, oldest first."""
        with self._lock:
            return list(self._requests)

    def timeline(self) -> list[Moment]:
        """The changes of level, manoeuvre or faulty components, oldest first (bounded)."""
        with self._lock:
            return list(self._timeline)

    def _decide(self, errors: list[Status], now: int) -> tuple[Manoeuvre, Status | None, str]:
        if not errors:
            return Manoeuvre.NONE, None, ""
        critical = self._config.critical
        timeouts = [s for s in errors if s.level is Level.TIMEOUT and s.component in critical]
        if timeouts:
            return Manoeuvre.EMERGENCY_STOP, timeouts[0], "critical stage timed out"
        first: dict[str, Status] = {}  # the earliest fault of each independent group
        for s in sorted(errors, key=lambda s: s.since_ms):
            first.setdefault(self._group(s, errors), s)
        if len(first) >= 2:
            second = sorted(first.values(), key=lambda s: s.since_ms)[1]
            return Manoeuvre.EMERGENCY_STOP, second, "second independent fault"
        oldest = min(errors, key=lambda s: s.since_ms)
        persisted = now - max(_since(self._error_since, now), self._entered_ms)
        if self.manoeuvre and persisted >= self._config.escalate_after_ms:
            why = f"error persisted {persisted} ms in a comfortable stop"
            return Manoeuvre.EMERGENCY_STOP, oldest, why
        return Manoeuvre.COMFORTABLE_STOP, oldest, "error"

    def _group(self, s: Status, errors: list[Status]) -> str:
        """Which independent fault ``s`` belongs to: the camera's checks are one camera;
        a stage (or the confidence check, which waits on the detector) that times out
        below a faulty stage is that stage's symptom, not a second fault."""
        if s.component == "capture" or (
            s.component.startswith("input.") and s.component != "input.confidence"
        ):
            return "camera"
        stages = self._config.stages
        if s.component == "input.confidence":  # it waits on the detector's output
            below = stages.index("detect") + 1 if "detect" in stages else 0
        else:
            below = stages.index(s.component) if s.component in stages else 0
        if s.level is Level.TIMEOUT:
            above = [e.component for e in errors if e.component in stages[1:below]]
            if above:
                return min(above, key=stages.index)
        return s.component

    def _request(
        self, now: int, manoeuvre: Manoeuvre, fault_ms: int, component: str, reason: str
    ) -> None:
        self.manoeuvre, self._entered_ms = manoeuvre, now
        self._requests.append(Request(now, manoeuvre, fault_ms, component, reason))
        (log.info if manoeuvre is Manoeuvre.NONE else log.error)(
            "fail-safe requests %s at %d ms (%s %s)", manoeuvre.name, now, component, reason
        )

    def _note(self, now: int, health: Health) -> None:
        """A timeline entry when the level, the manoeuvre or the faulty components change."""
        key = (health.level, self.manoeuvre, tuple((s.component, s.level) for s in health.faults))
        if key == self._last_key:
            return
        was = self._last_key[0] if self._last_key else Level.OK
        if health.level is Level.WARN and was is not Level.WARN:
            log.warning("fail-safe degraded at %d ms: %s", now, "; ".join(health.reasons))
        self._last_key = key
        self._timeline.append(Moment(now, health.level, self.manoeuvre, health.reasons))


def _since(start: int | None, now: int) -> int:
    return now if start is None else start
