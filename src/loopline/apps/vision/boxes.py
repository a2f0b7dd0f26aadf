"""Boxes and detections as arrays: what the detector returns, the tracker takes and the
metrics score. Boxes are ``(x1, y1, x2, y2)`` in pixels of the frame, float32."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

CLASSES = ("vehicle", "pedestrian", "cyclist", "sign")

Boxes = NDArray[np.float32]  # (n, 4) x1, y1, x2, y2


@dataclass(frozen=True, slots=True)
class Detections:
    """What a detector found in one frame."""

    boxes: Boxes  # (n, 4)
    scores: NDArray[np.float32]  # (n,) calibrated confidence in [0, 1]
    classes: NDArray[np.int64]  # (n,) index into CLASSES

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, keep: NDArray[np.bool_] | NDArray[np.int64]) -> Detections:
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep])


@dataclass(frozen=True, slots=True)
class Tracks:
    """The tracker's confirmed tracks in one frame."""

    ids: NDArray[np.int64]  # (m,) stable identities
    boxes: Boxes  # (m, 4)
    scores: NDArray[np.float32]  # (m,)
    classes: NDArray[np.int64]  # (m,)

    @classmethod
    def empty(cls) -> Tracks:
        return cls(
            np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32), np.zeros(0, np.int64),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)


def iou(a: Boxes, b: Boxes) -> NDArray[np.float32]:
    """Pairwise intersection over union of ``a`` (n, 4) and ``b`` (m, 4): (n, m)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: NDArray[np.float32] = (inter / np.maximum(union, 1e-9)).astype(np.float32)
    return out
