"""From generated frames to a registered detector: train, export to ONNX, quantize to
static INT8, fit the confidence's temperature, measure mAP (FP32 and INT8) on held-out
frames, and register the version, signed, with its figures.

The sets never overlap: training frames come from seed ``config.seed``, the temperature is
fitted on seed :data:`CALIBRATION_SEED`, quality is measured on seed :data:`EVAL_SEED`, and
the release gate's safety suite has seeds of its own.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision.boxes import CLASSES, Detections
from loopline.apps.vision.detector.calibrate import Calibration, fit_temperature
from loopline.apps.vision.detector.evaluate import Quality, Truth, coco_map, true_positives
from loopline.apps.vision.detector.runner import Detector
from loopline.apps.vision.detector.train import TrainConfig, dataset
from loopline.apps.vision.preprocess import boxes_to_input, resize, to_input
from loopline.registry import Bundle, Pinned, Registry, Signature

MODEL = "vision-detector"
FP32, INT8, WEIGHTS = "detector.fp32.onnx", "detector.int8.onnx", "weights.pt"
SIGNATURE = "signature.json"  # the registry's (loopline.registry.bundle.SIGNATURE_FILE)
EVAL_SEED, CALIBRATION_SEED = 777, 555

Say = Callable[[str], None]


@dataclass(frozen=True)
class Built:
    """A detector ready to register."""

    config: TrainConfig
    fp32: bytes
    int8: bytes
    weights: bytes  # PyTorch state dict: what the fleet loop fine-tunes from
    calibration: Calibration
    quality_fp32: Quality
    quality_int8: Quality
    train_seconds: float
    images_per_s: float
    losses: list[float]
    device: str = "cpu"

    def metrics(self) -> dict[str, float]:
        return {
            "map50_fp32": self.quality_fp32.map50, "map50_95_fp32": self.quality_fp32.map50_95,
            "map50_int8": self.quality_int8.map50, "map50_95_int8": self.quality_int8.map50_95,
            "temperature": self.calibration.temperature, "ece_before": self.calibration.ece_before,
            "ece_after": self.calibration.ece_after, "train_seconds": self.train_seconds,
        }  # fmt: skip


def held_out(count: int, seed: int = EVAL_SEED) -> tuple[NDArray[np.uint8], list[Truth]]:
    """Frames at the input size and their truth, from a seed no training set uses."""
    return dataset(seed, count)


def detect_all(detector: Detector, images: NDArray[np.uint8]) -> list[Detections]:
    """The detections of each image (input size, so boxes in input pixels)."""
    return [detector.detections(detector.raw(to_input(images[i : i + 1]))[0], (1.0, 1.0))
            for i in range(len(images))]  # fmt: skip


def build(
    config: TrainConfig, *, evaluation: tuple[NDArray[np.uint8], list[Truth]],
    calibration_frames: int = 200, init: bytes | None = None,
    extra: Sequence[tuple[NDArray[np.uint8], Truth]] = (), say: Say = print,
) -> Built:  # fmt: skip
    """Train (from ``init`` weights when given, on ``extra`` labelled frames too), export,
    quantize, calibrate and measure a detector."""
    import torch

    from loopline.apps.vision.detector.export import quantize, to_onnx
    from loopline.apps.vision.detector.train import train

    say(f"generating {config.frames} training frames")
    images, truth = dataset(config.seed, config.frames)
    if extra:
        images = np.concatenate([images, np.stack([e[0] for e in extra])])
        truth = [*truth, *(e[1] for e in extra)]
    state = None if init is None else torch.load(io.BytesIO(init), weights_only=True)

    def progress(step: int, steps: int, loss: float) -> None:
        if step % 25 == 0 or step == steps:
            say(f"  step {step}/{steps}  loss {loss:.3f}")

    trained = train(config, data=(images, truth), init=state, progress=progress)
    say(f"trained in {trained.seconds:.0f} s ({trained.images_per_s:.1f} images/s)")
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / FP32, Path(tmp) / INT8
        to_onnx(trained.model, fp32)
        quantize(fp32, int8, images[:: max(len(images) // 64, 1)][:64])
        fp32_bytes, int8_bytes = fp32.read_bytes(), int8.read_bytes()
    buffer = io.BytesIO()
    torch.save(trained.model.state_dict(), buffer)
    try:
        calibration = calibrate(Detector(int8_bytes, min_score=0.01), calibration_frames)
    except ValueError as exc:  # an undertrained detector: nothing true to calibrate on
        say(f"confidence left uncalibrated (temperature 1): {exc}")
        calibration = Calibration(1.0, float("nan"), float("nan"), 0)
    say(f"temperature {calibration.temperature:.2f}: ECE {calibration.ece_before:.3f} -> "
        f"{calibration.ece_after:.3f}")  # fmt: skip
    eval_images, eval_truth = evaluation
    quality = {}
    for name, model in (("fp32", fp32_bytes), ("int8", int8_bytes)):
        found = detect_all(Detector(model, temperature=calibration.temperature), eval_images)
        quality[name] = coco_map(eval_truth, found)
        say(f"{name}: mAP@0.5 {quality[name].map50:.3f}, mAP@0.5:0.95 {quality[name].map50_95:.3f}")
    return Built(
        config, fp32_bytes, int8_bytes, buffer.getvalue(), calibration, quality["fp32"],
        quality["int8"], trained.seconds, trained.images_per_s, trained.losses, trained.device,
    )  # fmt: skip


def calibrate(detector: Detector, frames: int) -> Calibration:
    """The temperature of ``detector``'s confidence, fitted on frames of their own seed."""
    images, truth = dataset(CALIBRATION_SEED, frames)
    logits, hits = [], []
    for found, t in zip(detect_all(detector, images), truth, strict=True):
        logits.append(np.log(found.scores / np.maximum(1 - found.scores, 1e-12)))
        hits.append(true_positives(t, found))
    return fit_temperature(np.concatenate(logits).astype(np.float32), np.concatenate(hits))


def register(registry: Registry, built: Built, *, tags: dict[str, str] | None = None) -> int:
    """Register ``built`` as the next version of :data:`MODEL`; return its number."""
    meta: dict[str, Any] = {
        "temperature": built.calibration.temperature, "classes": list(CLASSES),
        "config": asdict(built.config),
    }  # fmt: skip
    signature = Signature(
        task="detection", flavour="onnx-detector", inputs=("image",), outputs=CLASSES, meta=meta
    )
    files = {FP32: built.fp32, INT8: built.int8, WEIGHTS: built.weights}
    version = registry.register(
        MODEL, bundle=Bundle(signature, files), metrics=built.metrics(),
        params={"width": built.config.width, "frames": built.config.frames,
                "epochs": built.config.epochs},
        tags=tags or {},
    )  # fmt: skip
    return int(version.version)


def detector(built: Built) -> Detector:
    """The INT8 detector of ``built``, with its temperature."""
    return Detector(built.int8, temperature=built.calibration.temperature)


def to_training(image: NDArray[np.uint8], truth: Truth) -> tuple[NDArray[np.uint8], Truth]:
    """A labelled frame at capture size as a training example (input size, input pixels)."""
    return resize(image), Truth(boxes_to_input(truth.boxes, image.shape), truth.classes)


def load(pinned: Pinned, *, int8: bool = True, threads: int = 1) -> Detector:
    """The detector of a verified registry version (every file checked against its signed
    manifest as it is read)."""
    return from_files(pinned.read(INT8 if int8 else FP32), pinned.read(SIGNATURE), threads=threads)


def from_files(model: bytes, signature: bytes, *, threads: int = 1) -> Detector:
    """A detector from its ONNX bytes and its version's signature (the temperature)."""
    temperature = float(Signature.from_json(signature).meta["temperature"])
    return Detector(model, temperature=temperature, threads=threads)
