"""Over-the-air updates of the detector (Uptane's ideas on :mod:`loopline.edge`): a verified
registry version packed into a signed package for one hardware target, vehicles with A/B
slots that check a package before installing it, and the health check a vehicle runs on
the new slot before it keeps it (the detector loads, runs on test frames and stays within
the frame deadline); otherwise the slot switches back by itself."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision.detector.runner import Detector
from loopline.apps.vision.pipeline import INT8, MODEL, SIGNATURE, from_files
from loopline.apps.vision.runtime import DEADLINE_MS
from loopline.edge import Device, Fleet, HealthCheck, build_package
from loopline.registry import Registry

# the hardware and runtime a package is built for: a vehicle refuses any other
COMPATIBLE = "loopline-vision/x86_64/onnxruntime-1/input-320x192"


def package(registry: Registry, version: int, folder: Path, *, model: bytes | None = None) -> Path:
    """Version ``version`` of the detector (its files verified against the registry's
    signed manifest) as an OTA package signed with the registry's key. ``model``
    replaces the detector's bytes: a broken build, for the demo's rollback."""
    pinned = registry.resolve(MODEL, version)
    files = {
        INT8: model if model is not None else pinned.read(INT8),
        SIGNATURE: pinned.read(SIGNATURE),
    }
    out = folder / f"{MODEL}-{version}{'-broken' if model is not None else ''}.tar"
    return build_package(files, MODEL, version, COMPATIBLE, registry.keys.signing_key(), out=out)


def load(slot: Path, *, threads: int = 1) -> Detector:
    """The detector installed in a vehicle's slot."""
    return from_files((slot / INT8).read_bytes(), (slot / SIGNATURE).read_bytes(), threads=threads)


def health_check(
    frames: Sequence[NDArray[np.uint8]], budget_ms: float = DEADLINE_MS
) -> HealthCheck:
    """A vehicle's check of a new slot: the detector loads, runs on ``frames`` and takes
    less than ``budget_ms`` a frame (after one warm-up call)."""

    def check(slot: Path) -> list[str]:
        try:
            detector = load(slot)
            detector(frames[0])
        except Exception as exc:  # anything that stops it from running is the finding
            return [f"the detector does not run: {type(exc).__name__}: {exc}"]
        slowest = 0.0
        for f in frames:
            start = time.perf_counter()
            detector(f)
            slowest = max(slowest, (time.perf_counter() - start) * 1000)
        return [] if slowest <= budget_ms else [f"{slowest:.1f} ms a frame, over {budget_ms} ms"]

    return check


def fleet(
    root: Path, vehicles: int, registry: Registry, frames: Sequence[NDArray[np.uint8]]
) -> Fleet:
    """``vehicles`` simulated vehicles, each with A/B slots under ``root``, trusting the
    registry's public keys."""
    check = health_check(frames)
    trusted = registry.keys.public_keys()
    return Fleet(
        Device(f"vehicle-{i:03d}", root=root / f"vehicle-{i:03d}", compatible=COMPATIBLE,
               trusted_keys=trusted, health_check=check)
        for i in range(vehicles)
    )  # fmt: skip
