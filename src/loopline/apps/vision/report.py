"""The HTML report of ``loopline demo vision``: annotated frames (boxes, classes, track
ids), the frame latency histogram against the deadline, the detector's quality and the
tracker's beside their baselines, the fail-safe's health timeline, the fleet loop's gate
and the over-the-air rollouts."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import matplotlib
import numpy as np
from numpy.typing import NDArray

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from loopline.apps.vision.boxes import CLASSES
from loopline.apps.vision.failsafe import Supervisor
from loopline.apps.vision.gate import Gate
from loopline.apps.vision.pipeline import Built
from loopline.apps.vision.runtime import DEADLINE_MS, Drive, Perceived
from loopline.edge import Rollout
from loopline.reports import table, write_page
from loopline.training import svg

COLOURS = ((0, 200, 255), (60, 220, 60), (255, 60, 255), (255, 160, 0))  # BGR, by class


def write(
    path: Path, *, summary: Mapping[str, Any], built: tuple[Built, Built],
    drives: Sequence[tuple[str, Drive, Supervisor]],
    shown: Sequence[tuple[NDArray[np.uint8], Perceived]],
    gates: tuple[Mapping[str, float], Mapping[str, float], Gate],
    rollouts: Sequence[tuple[str, Rollout]], quality: Mapping[str, Any],
) -> Path:  # fmt: skip
    faulty = [(n, d, s) for n, d, s in drives if s.requests()]
    return write_page(
        path,
        title="loopline demo vision: edge perception, fail-safe, fleet loop, OTA",
        summary=summary,
        notes=[
            "Frames come from a procedural driving-scene simulator (loopline.apps.vision."
            "scenes), not a camera; its ground truth also stands in for the labellers of "
            "the fleet loop.",
            "Latencies are measured in real time at 30 fps with the pipeline pinned to one "
            "CPU core; the detector runs in ONNX Runtime, static INT8, one thread.",
        ],
        sections=[
            ("Annotated frames", _frames(shown)),
            ("Frame latency", _latency(drives)),
            ("Detector", _quality(built, quality)),
            ("Tracking (same detections)", _tracking(quality)),
            *[(f"Health timeline: {n}", _timeline(s)) for n, _, s in faulty],
            ("Fleet loop: release gate on the safety suite", _gate(gates)),
            ("Over-the-air rollouts", _rollouts(rollouts)),
        ],
    )


def annotate(image: NDArray[np.uint8], seen: Perceived) -> NDArray[np.uint8]:
    """``image`` with each track's box, class and id drawn."""
    out = image.copy()
    for box, cls, tid in zip(seen.tracks.boxes, seen.tracks.classes, seen.tracks.ids, strict=True):
        x1, y1, x2, y2 = (int(v) for v in box)
        colour = COLOURS[int(cls) % len(COLOURS)]
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        cv2.putText(out, f"{CLASSES[int(cls)]} #{int(tid)}", (x1, max(y1 - 4, 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)  # fmt: skip
    caption = f"frame {seen.index}  {seen.latency_ms:.1f} ms  {seen.manoeuvre.name}"
    white = (255, 255, 255)
    cv2.putText(out, caption, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, white, 1, cv2.LINE_AA)
    return out


def _frames(shown: Sequence[tuple[NDArray[np.uint8], Perceived]]) -> str:
    tags = []
    for image, seen in shown:
        ok, png = cv2.imencode(".png", annotate(image, seen))
        if ok:
            data = base64.b64encode(png.tobytes()).decode()
            tags.append(f'<img alt="frame {seen.index}" style="width:49%" '
                        f'src="data:image/png;base64,{data}">')  # fmt: skip
    return "".join(tags) or "<p>No frame was published.</p>"


def _latency(drives: Sequence[tuple[str, Drive, Supervisor]]) -> str:
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for name, d, _ in drives:
        ax.hist(d.latencies_ms, bins=60, alpha=0.5,
                label=f"{name}: p50 {d.percentile(50):.1f}, p99 {d.percentile(99):.1f} ms, "
                      f"missed {d.deadline_miss_rate:.1%}")  # fmt: skip
    ax.axvline(DEADLINE_MS, color="crimson", ls="--", label=f"deadline {DEADLINE_MS:.0f} ms")
    ax.set(xlabel="capture to publish (ms)", ylabel="frames", yscale="log")
    ax.legend(fontsize=8)
    return svg(fig)


def _quality(built: tuple[Built, Built], quality: Mapping[str, Any]) -> str:
    rows = []
    for name, b in zip(("v1", "v2 (fleet loop)"), built, strict=True):
        for kind, q in (("FP32", b.quality_fp32), ("INT8", b.quality_int8)):
            rows.append((name, kind, q.map50, q.map50_95, *(q.ap50.get(c, 0.0) for c in CLASSES)))
    head = ("version", "precision", "mAP@0.5", "mAP@0.5:0.95", *(f"AP50 {c}" for c in CLASSES))
    cal = built[0].calibration
    peds = table(
        [("OpenCV HOG people detector", quality["hog_map50_pedestrians"]),
         ("this detector (INT8)", quality["detector_map50_pedestrians"])],
        header=("pedestrians, same frames", "AP@0.5"),
    )  # fmt: skip
    note = (f"<p>Temperature {cal.temperature:.2f}: expected calibration error "
            f"{cal.ece_before:.3f} before, {cal.ece_after:.3f} after.</p>")  # fmt: skip
    return table(rows, header=head) + note + peds


def _tracking(q: Mapping[str, Any]) -> str:
    return table(
        [("ByteTrack", q["hota"], q["mota"], q["idf1"], q["id_switches"]),
         ("SORT-style baseline", q["baseline_hota"], q["baseline_mota"], q["baseline_idf1"],
          q["baseline_id_switches"])],
        header=("tracker", "HOTA", "MOTA", "IDF1", "ID switches"),
    )  # fmt: skip


def _timeline(sup: Supervisor) -> str:
    moments = sup.timeline()
    if not moments:
        return "<p>No change.</p>"
    t0 = moments[0].t_ms
    t = [(m.t_ms - t0) / 1000 for m in moments]
    fig, ax = plt.subplots(figsize=(9, 2.8))
    ax.step(t, [int(m.level) for m in moments], where="post", label="health level")
    ax.step(t, [int(m.manoeuvre) for m in moments], where="post", label="manoeuvre", lw=2)
    ax.set_yticks([0, 1, 2, 3], ["OK / none", "WARN / comfortable", "ERROR / emergency", "TIMEOUT"])
    ax.set(xlabel="seconds into the drive")
    ax.legend(fontsize=8, loc="upper left")
    rows = [(r.manoeuvre.name, r.component, r.reason[:90], r.reaction_ms) for r in sup.requests()]
    return svg(fig) + table(rows, header=("requested", "by", "why", "reaction (ms)"))


def _gate(gates: tuple[Mapping[str, float], Mapping[str, float], Gate]) -> str:
    v1, v2, verdict = gates
    rows = [(n, v1[n], v2.get(n, 0.0), "yes" if n not in verdict.failed else "REGRESSED")
            for n in v1]  # fmt: skip
    head = ("scenario", "v1 AP@0.5", "v2 AP@0.5", f"within {verdict.margin:.2f}")
    return (
        table(rows, header=head)
        + f"<p>{'Promoted' if verdict.passed else 'Refused'}: {verdict.why()}.</p>"
    )


def _rollouts(rollouts: Sequence[tuple[str, Rollout]]) -> str:
    rows = []
    for label, r in rollouts:
        for s in r.results_:
            rows.append((label, s.stage, f"{s.fraction:.0%}", len(s.devices), s.failures,
                         "passed" if s.passed else "halted", r.state_))  # fmt: skip
    head = ("package", "stage", "cohort", "vehicles", "failures", "gate", "rollout")
    return table(rows, header=head)
