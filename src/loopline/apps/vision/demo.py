"""``loopline demo vision``: the edge vision system end to end on the CPU, in a few minutes.

1. **Generate and train**: driving scenes from the simulator, a detector trained on them,
   exported to ONNX, quantized to static INT8, its confidence calibrated; registered
   (signed) and promoted, having passed the release gate's safety suite.
2. **Over the air**: the version packed into a signed package and rolled out to a fleet
   of simulated vehicles (A/B slots, staged by cohort, a health check after install).
3. **Drive**: one vehicle runs the perception pipeline in real time on one core on three
   drives, the last with faults injected (black frames, a stalled detector); the
   fail-safe requests its manoeuvres. Triggers (near misses, detector and tracker
   disagreeing, low confidence) queue clips, sent within a bandwidth budget.
4. **Fleet loop**: the uploaded clips are labelled (the simulator's ground truth stands
   in for labellers), the detector is fine-tuned on them, and the candidate must not
   regress on any safety scenario to be promoted (the report shows each scenario; with
   the demo's short training a refusal is a common outcome, and nothing refused ships).
5. **Update**: a tampered package is refused; a broken build rolls back on the canaries
   and halts its rollout; a promoted candidate then reaches the whole fleet.
6. **Report**: annotated frames, the latency histogram, quality and tracking tables, the
   health timeline, the fleet loop and the rollouts, in one HTML page.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision import gate, measure, ota, pipeline, scenes
from loopline.apps.vision.detector.runner import Detector
from loopline.apps.vision.detector.train import TrainConfig
from loopline.apps.vision.failsafe import Supervisor
from loopline.apps.vision.fleet import Recorder, Triggers, unpack_clip
from loopline.apps.vision.inputs import InputMonitor
from loopline.apps.vision.runtime import Captured, Drive, Fault, Perceived, Perception
from loopline.edge import Rollout, RolloutPlan, UntrustedPackageError, UploadQueue, open_package

Say = Callable[[str], None]
DRIVES = (
    scenes.Scenario("drive-city", 31, frames=150),
    scenes.Scenario("drive-night", 32, frames=150, conditions=gate.NIGHT),
    scenes.Scenario("drive-faults", 33, frames=150),
)
FAULTS = (Fault("black", 40, 70), Fault("stall", 110, 111))
UPLINK_BYTES = 2_000_000  # a drive's share of the vehicle's uplink


def run(
    out: Path, *, frames: int = 1200, epochs: int = 3, vehicles: int = 40, say: Say = print
) -> dict[str, Any]:
    """The demo (see the module); its summary, and the report at ``out/report.html``."""
    from loopline.apps.vision.report import write
    from loopline.registry import Registry

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    registry = Registry(f"sqlite:///{(out / 'registry' / 'mlflow.db').resolve()}")
    evaluation = pipeline.held_out(200)
    config = TrainConfig(frames=frames, epochs=epochs)

    say("1. generate and train the detector")
    v1 = pipeline.build(config, evaluation=evaluation, say=say)
    first = pipeline.register(registry, v1)
    suite_v1 = gate.score_suite(pipeline.detector(v1))
    verdict = gate.release_gate(suite_v1, None)
    registry.record(pipeline.MODEL, first, "release gate", trigger="demo", why=verdict.why())
    registry.promote(pipeline.MODEL, first, trigger="demo", why=verdict.why())

    say(f"2. roll version {first} out to {vehicles} vehicles")
    test_frames = [f.image for f in scenes.frames(4321, 4)]
    fleet = ota.fleet(out / "fleet", vehicles, registry, test_frames)
    packages = out / "packages"
    packages.mkdir(exist_ok=True)
    rollouts = [_rollout(fleet, ota.package(registry, first, packages), "v1")]

    say("3. drive: perception in real time on one core, faults in the last drive")
    vehicle = next(iter(fleet.devices.values()))
    slot = vehicle.slots.path(str(vehicle.slots.status().active))
    monitor = measure.monitor_for(measure.reference_frames(config.seed))
    queue = UploadQueue(max_items=64, max_bytes=40_000_000)
    drives, shown, sent = [], [], []
    for scenario in DRIVES:
        faults = FAULTS if scenario.name == "drive-faults" else ()
        drive, sup, kept = _drive(ota.load(slot), scenario, monitor, queue, faults)
        drives.append((scenario.name, drive, sup))
        shown += kept
        sent += queue.drain(UPLINK_BYTES)
        say(f"  {scenario.name}: p99 {drive.percentile(99):.1f} ms, {drive.published} published, "
            f"{drive.late + drive.overflow} late; manoeuvre {drive.manoeuvre.name}")  # fmt: skip

    say(f"4. fleet loop: {len(sent)} clips uploaded, labelled, fine-tuned on, gated")
    named = {s.name: s for s in DRIVES}
    labelled = [pair for u in sent for pair in gate.label(unpack_clip(bytes(u.payload)), named)]
    # from v1's weights at a quarter of the learning rate, on the clips and fresh scenes
    tuned = replace(config, frames=frames // 2, epochs=2, seed=config.seed + 1, lr=config.lr / 4)
    extra = [pipeline.to_training(image, truth) for image, truth in labelled]
    v2 = pipeline.build(tuned, evaluation=evaluation, init=v1.weights, extra=extra, say=say)
    second = pipeline.register(registry, v2, tags={"trained_on": f"{len(labelled)} fleet frames"})
    suite_v2 = gate.score_suite(pipeline.detector(v2))
    verdict = gate.release_gate(suite_v2, suite_v1)
    registry.record(pipeline.MODEL, second, "release gate", trigger="fleet loop",
                    passed=verdict.passed, why=verdict.why())  # fmt: skip
    say(f"  gate: {'passed' if verdict.passed else 'refused'}: {verdict.why()}")

    say("5. update over the air")
    refused = _tampered(ota.package(registry, first, packages), vehicle)
    shipped = second if verdict.passed else first  # a refused candidate never ships
    if verdict.passed:
        registry.promote(pipeline.MODEL, second, trigger="fleet loop", why=verdict.why())
    broken = ota.package(registry, shipped, packages, model=b"not a model")
    rollouts.append(_rollout(fleet, broken, f"v{shipped}, a broken build"))
    if verdict.passed:
        rollouts.append(_rollout(fleet, ota.package(registry, second, packages), f"v{second}"))
    say("6. report")
    quality = {**measure.pedestrians(pipeline.detector(v2 if verdict.passed else v1), 40, 4242),
               **measure.tracking(pipeline.detector(v1), clips=2, frames=90)}  # fmt: skip
    summary = {
        "detector_v1_map50_int8": round(v1.quality_int8.map50, 3),
        "detector_v2_map50_int8": round(v2.quality_int8.map50, 3),
        "int8_speedup": round(measure.speedup(v1.fp32, v1.int8, runs=100)["int8_speedup"], 2),
        "frame_p99_ms": round(max(d.percentile(99) for _, d, _ in drives), 2),
        "clips_sent": len(sent), "clips_evicted": queue.counters_.evicted,
        "gate": "passed" if verdict.passed else "refused", "tampered_package": refused,
        "fleet_versions": sorted({str(d.slots.status().version) for d in fleet.devices.values()}),
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    page = write(out / "report.html", summary=summary, built=(v1, v2), drives=drives,
                 shown=shown, gates=(suite_v1, suite_v2, verdict), rollouts=rollouts,
                 quality=quality)  # fmt: skip
    summary["report"] = str(page)
    return summary


def _drive(
    detector: Detector, scenario: scenes.Scenario, monitor: InputMonitor, queue: UploadQueue,
    faults: tuple[Fault, ...],
) -> tuple[Drive, Supervisor, list[tuple[NDArray[np.uint8], Perceived]]]:  # fmt: skip
    """One drive; its clips go to ``queue`` unless faults were injected (a black or
    blurred camera's frames are no training data, whatever the simulator says was there)."""
    sup = Supervisor(monitor=monitor.for_rate(scenes.FPS))
    triggers, recorder = Triggers(), Recorder(queue, scenario.name)
    kept: list[tuple[NDArray[np.uint8], Perceived]] = []

    def published(frame: Captured, seen: Perceived) -> None:
        if not faults:
            fired = triggers.check(seen.index, frame.image.shape, seen.detections, seen.held)
            recorder.add(seen.index, frame.image, fired)
        if seen.index in (30, 100) and len(kept) < 4:
            kept.append((frame.image, seen))

    p = Perception(detector, supervisor=sup, faults=faults, on_published=published)
    images = [f.image for f in scenes.clip(scenario)]  # drawn before: the core is the pipeline's
    drive = p.drive(images)
    recorder.flush()
    return drive, sup, kept


def _rollout(fleet: Any, package: Path, label: str) -> tuple[str, Rollout]:
    rollout = Rollout(fleet, package, plan=RolloutPlan(stages=(0.05, 0.25, 1.0), min_reports=2))
    rollout.run()
    return label, rollout


def _tampered(package: Path, vehicle: Any) -> str:
    """A package with one byte flipped, offered to ``vehicle``: the reason it refuses."""
    data = bytearray(package.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = package.with_name(package.stem + "-tampered.tar")
    bad.write_bytes(bytes(data))
    try:
        open_package(bad, vehicle.trusted_keys, vehicle.compatible)
    except UntrustedPackageError as exc:
        return exc.reason
    return "accepted"
