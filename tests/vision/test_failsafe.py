"""Fault injection into the fail-safe, one test per fault, on synthetic 320x192 frames (a
textured scene with moving shapes and fresh sensor noise on each frame) at 30 frames a
second, on an injected clock: the health state, the manoeuvre, its reaction time, the
escalation, the recovery, and no false alarm on clean frames."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import cv2
import numpy as np
import pytest

from loopline.apps.vision.boxes import Detections
from loopline.apps.vision.failsafe import FailsafeConfig, Manoeuvre, Supervisor
from loopline.apps.vision.inputs import Frame, InputLimits, InputMonitor
from loopline.exceptions import ConfigError
from loopline.monitoring import Level

H, W, P = 192, 320, 33  # frame size, frame period in ms
STAGES = ("capture", "preprocess", "detect", "track", "publish")
ESCALATE, RECOVER = 1000, 1500
NONE, COMFORTABLE, EMERGENCY = Manoeuvre


def _detections(*scores: float) -> Detections:
    boxes = np.tile(np.array([[10, 10, 50, 40]], np.float32), (len(scores), 1))
    return Detections(boxes, np.array(scores, np.float32), np.zeros(len(scores), np.int64))


CONFIDENT = _detections(0.92, 0.85, 0.7, 0.4)
UNSURE = _detections(0.25, 0.2, 0.12)


@cache
def _background(seed: int) -> Frame:
    """A smoothed random texture under a sky-to-road brightness gradient."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (0, 0), 2)
    gradient = np.linspace(150, 70, H, dtype=np.float32)[:, None, None] * [1.0, 0.9, 0.8]
    return np.clip(0.5 * texture + gradient, 0, 255).astype(np.uint8)


@cache
def _noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 3, (8, H, W, 3)).round().astype(np.int16)


def render(seed: int, i: int, edit: Callable[[Frame], Frame] | None = None) -> Frame:
    """Frame ``i``: two shapes moving over the background, ``edit`` applied to the optics
    (blur, colour), then fresh sensor noise."""
    image = _background(seed).copy()
    x, y = (20 + 3 * i) % (W - 40), 100 + int(10 * np.sin(i / 10))
    cv2.rectangle(image, (x, y), (x + 40, y + 25), (30, 30, 200), -1)
    cv2.circle(image, ((W - 2 * i) % W, 60), 12, (200, 200, 40), -1)
    image = edit(image) if edit else image
    noisy = image.astype(np.int16) + _noise(seed)[i % 8]
    return np.asarray(np.clip(noisy, 0, 255), np.uint8)


@cache
def _training_frames() -> tuple[Frame, ...]:
    """Other scenes from the same generator: the reference the test scene is compared with
    (interleaved, so that both halves, reference and threshold, see every scene)."""
    return tuple(render(seed, i) for i in range(0, 90, 3) for seed in (1, 2, 3))


def _fitted_monitor() -> InputMonitor:
    monitor = InputMonitor()
    monitor.fit_reference(_training_frames())
    return monitor


class Rig:
    """The pipeline around the supervisor: every period, a frame, its detections and a
    heartbeat from each stage, then a supervisor step."""

    def __init__(self, seed: int = 7) -> None:
        self.t = 0
        config = FailsafeConfig(escalate_after_ms=ESCALATE, recover_after_ms=RECOVER)
        self.sup = Supervisor(config=config, monitor=_fitted_monitor(), clock=lambda: self.t)
        self.seed, self.i = seed, 0
        self.last: Frame = np.zeros((H, W, 3), np.uint8)
        self.steps: list[tuple[int, Manoeuvre]] = []

    def run(
        self,
        n: int,
        *,
        edit: Callable[[Frame], Frame] | None = None,
        hold: bool = False,
        detections: Detections = CONFIDENT,
        silent: tuple[str, ...] = (),
        levels: dict[str, Level] | None = None,
        period: int = P,
    ) -> Manoeuvre:
        for _ in range(n):
            self.t += period
            self.i += 1
            self.last = self.last if hold else render(self.seed, self.i, edit)
            self.sup.observe_frame(self.last, self.t)
            self.sup.observe_detections(detections, self.t)
            for stage in STAGES:
                level = (levels or {}).get(stage, Level.OK)
                if stage not in silent:
                    self.sup.beat(stage, level, "injected" if level else "", self.t)
            self.steps.append((self.t, self.sup.step(self.t)))
        return self.sup.manoeuvre

    def health(self) -> tuple[Level, set[str]]:
        health = self.sup.watchdog.check(self.t)
        return health.level, {s.component for s in health.faults}

    def since(self, t_ms: int) -> list[Manoeuvre]:
        return [m for t, m in self.steps if t >= t_ms]


def black(image: Frame) -> Frame:  # a covered lens: only the sensor noise is left
    return np.zeros_like(image)


def blur(kernel: int) -> Callable[[Frame], Frame]:  # out of focus, or a smeared lens
    return lambda image: np.asarray(cv2.GaussianBlur(image, (kernel, kernel), 0), np.uint8)


def invert(image: Frame) -> Frame:
    return 255 - image


def upside_down(image: Frame) -> Frame:  # a camera mounted the wrong way round
    return np.ascontiguousarray(image[::-1])


@pytest.fixture
def rig() -> Rig:
    rig = Rig()
    assert rig.run(30) is NONE  # warmed up
    return rig


def _ok_again(rig: Rig, after: int) -> int:
    """When the overall level came back to OK after ``after``."""
    return next(m.t_ms for m in rig.sup.timeline() if m.t_ms >= after and m.level is Level.OK)


def test_clean_frames_raise_no_false_alarm(rig: Rig) -> None:
    rig.run(300)
    rig.run(30, detections=_detections())  # an empty road is not low confidence
    assert rig.sup.requests() == []
    assert {m.level for m in rig.sup.timeline()} == {Level.OK}
    assert set(rig.since(0)) == {NONE}


def test_single_bad_frames_do_not_trip(rig: Rig) -> None:
    for fault in ({"edit": black}, {"edit": blur(31)}, {"edit": invert}, {"hold": True},
                  {"period": 4 * P}, {"detections": UNSURE}):  # fmt: skip
        rig.run(1, **fault)
        rig.run(9)
    assert rig.sup.requests() == []
    assert {m.level for m in rig.sup.timeline()} == {Level.OK}


def test_a_frozen_camera_requests_a_comfortable_stop_then_escalates(rig: Rig) -> None:
    onset = rig.t + P
    assert rig.run(4, hold=True) is NONE
    assert rig.run(1, hold=True) is COMFORTABLE  # 5 repeats in a row
    (stop,) = rig.sup.requests()
    assert (stop.component, stop.fault_ms, stop.reaction_ms) == ("input.frozen", onset, 4 * P)
    assert rig.health() == (Level.ERROR, {"input.frozen"})
    assert rig.run(40, hold=True) is EMERGENCY
    first, second = rig.sup.requests()
    assert ESCALATE <= second.t_ms - first.t_ms < ESCALATE + P
    assert "persisted" in second.reason
    assert second.fault_ms == onset


def test_black_frames_stop_comfortably_and_recover_only_after_a_spell_of_ok(rig: Rig) -> None:
    onset = rig.t + P
    assert rig.run(2, edit=black) is NONE
    assert rig.run(1, edit=black) is COMFORTABLE  # 3 of the last 5
    (stop,) = rig.sup.requests()
    assert (stop.component, stop.fault_ms, stop.reaction_ms) == ("input.black", onset, 2 * P)
    rig.run(17, edit=black)
    level, faulty = rig.health()
    assert level is Level.ERROR
    assert {"input.black", "input.ood"} <= faulty  # noise on black is not "blurred": it is black
    assert rig.sup.manoeuvre is COMFORTABLE  # one camera: its checks are not independent
    clean = rig.t + P
    rig.run(60)
    release = rig.sup.requests()[-1]
    ok = _ok_again(rig, clean)
    assert ok - clean <= 6 * P  # the debounce windows empty in a few frames
    assert (release.manoeuvre, release.fault_ms) == (NONE, ok)
    assert RECOVER <= release.t_ms - ok < RECOVER + P
    assert {m for t, m in rig.steps if clean <= t < release.t_ms} == {COMFORTABLE}


def test_heavy_blur_requests_a_comfortable_stop(rig: Rig) -> None:
    onset = rig.t + P
    assert rig.run(4, edit=blur(31)) is NONE
    assert rig.run(1, edit=blur(31)) is COMFORTABLE  # 5 of the last 10
    (stop,) = rig.sup.requests()
    assert (stop.component, stop.fault_ms, stop.reaction_ms) == ("input.blur", onset, 4 * P)
    assert rig.health() == (Level.ERROR, {"input.blur"})


def test_mild_blur_only_warns(rig: Rig) -> None:
    assert rig.run(90, edit=blur(15)) is NONE
    assert rig.health() == (Level.WARN, {"input.blur"})
    assert rig.sup.requests() == []
    assert rig.sup.timeline()[-1][1:3] == (Level.WARN, NONE)


def test_a_frame_rate_drop_requests_a_comfortable_stop(rig: Rig) -> None:
    onset = rig.t + 4 * P
    assert rig.run(4, period=4 * P) is NONE  # 7.5 frames a second, under 10
    assert rig.run(1, period=4 * P) is COMFORTABLE
    (stop,) = rig.sup.requests()
    assert (stop.component, stop.fault_ms) == ("input.frame_rate", onset)
    assert stop.reaction_ms == 4 * 4 * P
    assert rig.health() == (Level.ERROR, {"input.frame_rate"})


def test_a_mild_frame_rate_drop_only_warns(rig: Rig) -> None:
    assert rig.run(30, period=2 * P) is NONE  # 15 frames a second
    assert rig.health() == (Level.WARN, {"input.frame_rate"})


def test_low_confidence_requests_a_comfortable_stop(rig: Rig) -> None:
    onset = rig.t + P
    assert rig.run(9, detections=UNSURE) is NONE
    assert rig.run(1, detections=UNSURE) is COMFORTABLE  # 10 of the last 15
    (stop,) = rig.sup.requests()
    assert (stop.component, stop.fault_ms, stop.reaction_ms) == ("input.confidence", onset, 9 * P)
    assert rig.health() == (Level.ERROR, {"input.confidence"})


@pytest.mark.parametrize("edit", [invert, upside_down])
def test_out_of_distribution_frames_request_a_comfortable_stop(
    rig: Rig, edit: Callable[[Frame], Frame]
) -> None:
    onset = rig.t + P
    assert rig.run(4, edit=edit) is NONE
    assert rig.run(1, edit=edit) is COMFORTABLE
    (stop,) = rig.sup.requests()
    assert (stop.component, stop.fault_ms, stop.reaction_ms) == ("input.ood", onset, 4 * P)
    assert rig.health() == (Level.ERROR, {"input.ood"})


@pytest.mark.parametrize("stage", ["capture", "detect", "track"])
def test_a_critical_stage_that_stops_beating_requests_an_emergency_stop(
    rig: Rig, stage: str
) -> None:
    last_beat = rig.t
    assert rig.run(4, silent=(stage,)) is NONE  # 132 ms: within the 150 ms timeout
    assert rig.run(1, silent=(stage,)) is EMERGENCY
    (stop,) = rig.sup.requests()
    assert (stop.component, stop.fault_ms, stop.reaction_ms) == (stage, last_beat, 5 * P)
    assert "critical stage timed out" in stop.reason
    assert rig.health() == (Level.TIMEOUT, {stage})


@pytest.mark.parametrize("stage", ["preprocess", "publish"])
def test_another_stage_that_stops_beating_requests_a_comfortable_stop(rig: Rig, stage: str) -> None:
    assert rig.run(5, silent=(stage,)) is COMFORTABLE
    assert rig.sup.requests()[0].component == stage
    assert rig.run(35, silent=(stage,)) is EMERGENCY


def test_a_stage_error_escalates_and_an_emergency_never_eases_to_comfortable(rig: Rig) -> None:
    onset, error = rig.t + P, {"track": Level.ERROR}
    assert rig.run(1, levels=error) is COMFORTABLE
    assert rig.sup.requests()[0][1:4] == (COMFORTABLE, onset, "track")
    assert "ERROR injected" in rig.sup.timeline()[-1].reasons[0]
    assert rig.run(40, levels=error) is EMERGENCY
    first, second = rig.sup.requests()
    assert ESCALATE <= second.t_ms - first.t_ms < ESCALATE + P
    rig.run(10)
    rig.run(3, levels=error)  # alone, this would call for a comfortable stop
    rig.run(20)
    rig.run(1, levels={"track": Level.WARN})  # not OK: the spell of OK starts again
    recovered = rig.t + P
    assert rig.run(50) is NONE
    release = rig.sup.requests()[-1]
    assert [r.manoeuvre for r in rig.sup.requests()] == [COMFORTABLE, EMERGENCY, NONE]
    assert release.fault_ms == recovered
    assert RECOVER <= release.t_ms - recovered < RECOVER + P
    assert set(rig.since(second.t_ms)) - {NONE} == {EMERGENCY}


def test_a_second_independent_fault_escalates_at_once(rig: Rig) -> None:
    error = {"track": Level.ERROR}
    assert rig.run(1, levels=error) is COMFORTABLE
    onset = rig.t + P
    assert rig.run(4, hold=True, levels=error) is COMFORTABLE
    assert rig.run(1, hold=True, levels=error) is EMERGENCY
    first, second = rig.sup.requests()
    assert (second.component, second.fault_ms) == ("input.frozen", onset)
    assert "second independent fault" in second.reason
    assert second.t_ms - first.t_ms < ESCALATE


def test_two_faults_at_once_go_straight_to_an_emergency_stop(rig: Rig) -> None:
    assert rig.run(1, levels={"track": Level.ERROR, "publish": Level.ERROR}) is EMERGENCY
    assert [r.manoeuvre for r in rig.sup.requests()] == [EMERGENCY]


def _gray(frame: Frame) -> Frame:
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), np.uint8)


def test_gray_frames_are_checked_too() -> None:
    monitor = InputMonitor()
    monitor.fit_reference([_gray(f) for f in _training_frames()])
    gray = [_gray(render(7, i)) for i in range(40)]
    levels = [r.level for i, f in enumerate(gray) for r in monitor.check_one(f, i * P)]
    assert set(levels) == {Level.OK}
    dark = [
        r for i in range(3) for r in monitor.check_one(np.zeros((H, W), np.uint8), 2000 + i * P)
    ]
    assert [r.level for r in dark if r.name == "black"] == [Level.OK, Level.OK, Level.ERROR]


def test_misconfiguration_names_the_field_and_what_was_given() -> None:
    with pytest.raises(ConfigError, match=r"blur_k_of_n needs 1 <= k <= n. Got \(6, 5\)"):
        InputLimits(blur_k_of_n=(6, 5))
    with pytest.raises(ConfigError, match=r"0 <= black_error <= black_warn\. Got 30\.0 and 20\.0"):
        InputLimits(black_error=30.0)
    with pytest.raises(ConfigError, match=r"critical .*'radar'.* must be among the stages"):
        FailsafeConfig(critical=("radar",))
    with pytest.raises(ConfigError, match=r"recover_after_ms must be > 0\. Got 0"):
        FailsafeConfig(recover_after_ms=0)
    with pytest.raises(ConfigError, match=r"uint8 BGR .* Got float32"):
        InputMonitor().check_one(np.zeros((H, W, 3), np.float32), 0)
    with pytest.raises(ConfigError, match=r"at least 4 frames\. Got 0"):
        InputMonitor().fit_reference([])


def test_a_failing_detector_s_downstream_timeouts_are_its_symptoms_not_a_second_fault() -> None:
    now = [0]
    config = FailsafeConfig(escalate_after_ms=ESCALATE, recover_after_ms=RECOVER)
    sup = Supervisor(config=config, monitor=_fitted_monitor(), clock=lambda: now[0])
    for i in range(29):  # under a second: the detector raises on every frame
        now[0] += P
        sup.observe_frame(render(7, i), now[0])  # nothing detected, nothing published
        for stage in ("capture", "preprocess", "track"):
            sup.beat(stage, Level.OK, "", now[0])
        sup.beat("detect", Level.ERROR, "RuntimeError: session failed", now[0])
        sup.step(now[0])
    faulty = {s.component: s.level for s in sup.watchdog.check(now[0]).faults}
    assert faulty["publish"] is Level.TIMEOUT
    assert faulty["input.confidence"] is Level.TIMEOUT
    assert [r.manoeuvre for r in sup.requests()] == [COMFORTABLE], "one fault, not two"
