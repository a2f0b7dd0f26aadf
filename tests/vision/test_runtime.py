"""The perception pipeline in real time on one core: frames published within the deadline,
late ones dropped and predicted through, and each injected fault answered by the
manoeuvre the policy calls for, in time. Also on real footage (OpenCV's vtest.avi)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from loopline.apps.vision import scenes
from loopline.apps.vision.detector.runner import Detector
from loopline.apps.vision.failsafe import Manoeuvre, Supervisor
from loopline.apps.vision.inputs import InputMonitor
from loopline.apps.vision.measure import monitor_for, reference_frames
from loopline.apps.vision.runtime import DEADLINE_MS, Fault, Perception, video_frames

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")  # Debian's opencv-doc


@pytest.fixture(scope="module")
def frames() -> list[NDArray[np.uint8]]:
    return [f.image for f in scenes.frames(11, 90, per_clip=90)]


@pytest.fixture(scope="module")
def monitor() -> InputMonitor:
    return monitor_for(reference_frames(1, 200))


def drive(
    onnx: Path, frames: list[NDArray[np.uint8]], monitor: InputMonitor, *faults: Fault
) -> Perception:
    supervisor = Supervisor(monitor=monitor.for_rate(30.0))  # the reference, no frames seen
    p = Perception(Detector(onnx), supervisor=supervisor, faults=faults)
    p.result = p.drive(frames)  # type: ignore[attr-defined]
    return p


def test_clean_frames_are_published_in_time_and_nothing_is_requested(
    untrained_onnx: Path, frames: list[NDArray[np.uint8]], monitor: InputMonitor
) -> None:
    p = drive(untrained_onnx, frames, monitor)
    d = p.result  # type: ignore[attr-defined]
    assert d.frames == 90
    assert d.published + d.late + d.overflow + d.errors == 90
    assert d.published >= 85, d
    assert d.percentile(99) < DEADLINE_MS
    assert [f.index for f in p.planner.frames] == sorted(f.index for f in p.planner.frames)
    assert p.supervisor.requests() == [], p.supervisor.timeline()[-3:]


def test_black_frames_request_a_comfortable_stop_within_200_ms(
    untrained_onnx: Path, frames: list[NDArray[np.uint8]], monitor: InputMonitor
) -> None:
    p = drive(untrained_onnx, frames, monitor, Fault("black", 30, 90))
    first = p.supervisor.requests()[0]
    assert first.manoeuvre is Manoeuvre.COMFORTABLE_STOP
    assert first.component == "input.black"
    assert 0 <= first.reaction_ms < 200
    assert p.planner.manoeuvres[0][1] is Manoeuvre.COMFORTABLE_STOP


def test_a_stalled_detector_is_an_emergency_stop_and_its_frames_are_predicted_through(
    untrained_onnx: Path, frames: list[NDArray[np.uint8]], monitor: InputMonitor
) -> None:
    p = drive(untrained_onnx, frames, monitor, Fault("stall", 30, 31))
    d = p.result  # type: ignore[attr-defined]
    assert d.late + d.overflow >= 5, "the frames that queued behind the stall missed the deadline"
    assert p.predicted >= 5, "and the tracker predicted through them"
    request = p.supervisor.requests()[0]
    assert request.manoeuvre is Manoeuvre.EMERGENCY_STOP
    assert request.component == "detect"
    assert request.reaction_ms < 250  # the 150 ms heartbeat timeout and one guard period
    assert Manoeuvre.COMFORTABLE_STOP not in [r.manoeuvre for r in p.supervisor.requests()]


def test_a_crashing_detector_drops_its_frames_and_asks_to_stop(
    untrained_onnx: Path, frames: list[NDArray[np.uint8]], monitor: InputMonitor
) -> None:
    p = drive(untrained_onnx, frames, monitor, Fault("crash", 30, 60))
    d = p.result  # type: ignore[attr-defined]
    assert d.errors == 30
    assert d.published >= 55
    assert p.supervisor.requests()[0].component == "detect"
    assert p.supervisor.requests()[0].manoeuvre >= Manoeuvre.COMFORTABLE_STOP


def test_real_footage_runs_through_the_pipeline(untrained_onnx: Path) -> None:
    assert VTEST.exists(), "Debian's opencv-doc is installed by `make system`"
    footage = list(video_frames(str(VTEST), limit=60))
    assert footage[0].shape == (576, 768, 3)
    p = Perception(Detector(untrained_onnx))
    d = p.drive(footage, fps=10)  # the file's own rate
    assert d.published >= 55, d
    assert d.percentile(99) < DEADLINE_MS
