"""Vision benchmark: the edge perception system's figures, each beside its baseline, in one run.

    loopline bench vision [--frames N] [--epochs E] [--width W] [--out DIR] [--reuse] [--json]

* The detector is trained here on the CPU (``--frames`` generated frames, ``--epochs``),
  exported to ONNX and quantized to static INT8. ``int8_speedup``: the median time of one
  ONNX Runtime call on one thread, FP32 over INT8, interleaved in rounds (``fp32_ms``,
  ``int8_ms`` beside it). ``map50_fp32``, ``map50_int8``, ``map50_95_int8`` (and
  ``map50_95_fp32``): COCO's evaluation (pycocotools) on held-out generated frames.
* ``hog_map50_pedestrians``: OpenCV's HOG people detector on the same full-size frames,
  pedestrians only, with ``detector_map50_pedestrians`` (ours, INT8) beside it.
* ``hota``, ``mota``, ``idf1`` of ByteTrack, and ``baseline_hota`` (and MOTA, IDF1) of the
  SORT-style tracker, on the same INT8 detections of generated clips, against the
  generator's identities (TrackEval's metrics).
* ``frame_p50_ms``, ``frame_p99_ms``, ``deadline_miss_rate``: the whole pipeline (capture,
  preprocess, detect, track, publish; 30 ms deadline) in real time at 30 fps, pinned to
  one core, on generated clips; ``vtest_frame_p99_ms`` and ``bikes_frame_p99_ms`` on real
  footage (no labels).
* ``failsafe_reaction_ms`` per fault (from the fault's onset to the manoeuvre request) and
  ``failsafe_reaction_ms_max``.

The trained detector is kept in ``--out``; ``--reuse`` measures it again without
training (its training figures come from the run that trained it). Training runs on a
GPU where PyTorch finds one (``train_device`` names it); inference is always measured
on one CPU core, the vehicle's.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4000, help="generated training frames")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--width", type=int, default=24, help="the network's channel scale")
    parser.add_argument("--eval-frames", type=int, default=300)
    parser.add_argument("--pipeline-frames", type=int, default=600, help="at 30 fps")
    parser.add_argument("--out", type=Path, default=Path(".loopline/bench-vision"))
    parser.add_argument("--reuse", action="store_true", help="the detector in --out, if any")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--save", action="store_true", help="also write benchmarks/results/vision.json"
    )
    args = parser.parse_args()
    console = Console(stderr=True)
    started = time.perf_counter()

    def say(what: str) -> None:
        console.log(f"[{time.perf_counter() - started:5.0f} s] {what}")

    from loopline.apps.vision import measure, scenes
    from loopline.apps.vision.detector.runner import Detector
    from loopline.apps.vision.detector.train import TrainConfig
    from loopline.apps.vision.pipeline import build, held_out
    from loopline.apps.vision.runtime import video_frames

    config = TrainConfig(frames=args.frames, epochs=args.epochs, width=args.width)
    saved = args.out / "built.json"
    if args.reuse and saved.exists():
        say(f"reusing the detector in {args.out}")
        result: dict[str, Any] = json.loads(saved.read_text())
        fp32 = (args.out / "detector.fp32.onnx").read_bytes()
        int8_bytes = (args.out / "detector.int8.onnx").read_bytes()
    else:
        built = build(config, evaluation=held_out(args.eval_frames), say=say)
        fp32, int8_bytes = built.fp32, built.int8
        result = {
            "cpu": platform.processor() or platform.machine(),
            "train_frames": config.frames, "epochs": config.epochs, "width": config.width,
            "train_seconds": round(built.train_seconds, 1),
            "train_images_per_s": round(built.images_per_s, 1),
            "train_device": built.device, **built.metrics(),
        }  # fmt: skip
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "detector.fp32.onnx").write_bytes(fp32)
        (args.out / "detector.int8.onnx").write_bytes(int8_bytes)
        saved.write_text(json.dumps(result))
    t = float(result["temperature"])
    say("INT8 against FP32, one thread")
    result.update(measure.speedup(fp32, int8_bytes))
    int8 = Detector(int8_bytes, temperature=t)
    say("HOG people detector against ours, pedestrians")
    result.update(measure.pedestrians(int8, 100, seed=4242))
    say("ByteTrack against SORT on the same detections")
    result.update(measure.tracking(int8))
    say(f"pipeline in real time on one core, {args.pipeline_frames} frames")
    frames = [f.image for f in scenes.frames(measure.PIPELINE_SEED, args.pipeline_frames)]
    monitor = measure.monitor_for(measure.reference_frames(config.seed))
    drive, _ = measure.drive_latency(int8_bytes, t, frames, monitor)
    result.update({
        "frame_p50_ms": drive.percentile(50), "frame_p99_ms": drive.percentile(99),
        "deadline_miss_rate": drive.deadline_miss_rate, "pipeline_frames": drive.frames,
    })  # fmt: skip
    for footage in measure.real_footage():
        real = list(video_frames(footage.path, limit=300))
        d, why = measure.drive_latency(int8_bytes, t, real, monitor, fps=footage.fps)
        key = footage.name.split(".")[0]
        result[f"{key}_frame_p99_ms"] = d.percentile(99)
        result[f"{key}_deadline_miss_rate"] = d.deadline_miss_rate
        result[f"{key}_manoeuvre"] = d.manoeuvre.name.lower()
        result[f"{key}_caught_by"] = why
        say(
            f"  {footage.name}: p99 {d.percentile(99):.1f} ms, fail-safe {d.manoeuvre.name} ({why})"
        )
    say("fail-safe reaction per fault")
    reactions = measure.reactions(int8_bytes, t, frames[:150], monitor, say=say)
    result["failsafe_reaction_ms"] = {k: v["reaction_ms"] for k, v in reactions.items()}
    result["failsafe_manoeuvre"] = {k: v["manoeuvre"] for k, v in reactions.items()}
    result["failsafe_caught_by"] = {k: v["component"] for k, v in reactions.items()}
    result["failsafe_escalated"] = {k: v["escalated"] for k, v in reactions.items()}
    times = [v["reaction_ms"] for v in reactions.values()]
    result["failsafe_reaction_ms_max"] = None if None in times else max(times)
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.save:
        from loopline.ops import save_result

        saved_to = save_result("vision", result)
        print(f"saved {saved_to}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return
    table = Table("figure", "value", title="loopline bench vision")
    for name, value in result.items():
        table.add_row(name, json.dumps(value))
    Console().print(table)


if __name__ == "__main__":
    main()
