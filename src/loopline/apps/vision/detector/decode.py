"""From the network's output to detections (NumPy and OpenCV only: the runtime imports no
PyTorch). Peaks of each class's heatmap (a cell no lower than its 3x3 neighbours: the
max-pool that stands in for NMS in CenterNet), their sizes and offsets, and the confidence
``sigmoid(logit / T)`` with the temperature ``T`` fitted on held-out frames
(:mod:`loopline.apps.vision.detector.calibrate`)."""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision.boxes import Detections
from loopline.apps.vision.preprocess import STRIDE

KERNEL = np.ones((3, 3), np.uint8)


def decode(
    out: NDArray[np.float32], *, classes: int, temperature: float = 1.0,
    min_score: float = 0.05, top_k: int = 100, scale: tuple[float, float] = (1.0, 1.0),
) -> Detections:  # fmt: skip
    """The detections in one output (C + 4, H, W), with boxes in frame pixels (``scale``:
    frame pixels per input pixel)."""
    logits = out[:classes]
    floor = temperature * math.log(min_score / (1 - min_score))  # the score's logit
    peaks = np.zeros(logits.shape, bool)
    for c in range(classes):
        m = logits[c]
        peaks[c] = (m >= cv2.dilate(m, KERNEL)) & (m > floor)
    cls, ys, xs = np.nonzero(peaks)
    if len(cls) == 0:
        return Detections.empty()
    z = logits[cls, ys, xs]
    if len(z) > top_k:
        keep = np.argpartition(-z, top_k)[:top_k]
        cls, ys, xs, z = cls[keep], ys[keep], xs[keep], z[keep]
    w = np.exp(np.clip(out[classes, ys, xs], -2.0, 6.0))
    h = np.exp(np.clip(out[classes + 1, ys, xs], -2.0, 6.0))
    cx = xs + out[classes + 2, ys, xs]
    cy = ys + out[classes + 3, ys, xs]
    sx, sy = scale[0] * STRIDE, scale[1] * STRIDE
    boxes = np.stack(
        [(cx - w / 2) * sx, (cy - h / 2) * sy, (cx + w / 2) * sx, (cy + h / 2) * sy], 1
    )
    scores = 1.0 / (1.0 + np.exp(-z / temperature))
    return Detections(boxes.astype(np.float32), scores.astype(np.float32), cls.astype(np.int64))
