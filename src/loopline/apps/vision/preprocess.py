"""The one definition of what the detector sees: the captured frame resized to the network's
input (area interpolation) and scaled to [0, 1], channels first. Training, calibration,
evaluation and the runtime all call :func:`to_input`, so what was trained on is what runs
(no skew between the two)."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

INPUT_W, INPUT_H = 320, 192  # the network's input; a multiple of 32
STRIDE = 4  # output cells are 4x4 input pixels


def resize(frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``frame`` (any size, BGR) at the network's input size."""
    if frame.shape[1] == INPUT_W and frame.shape[0] == INPUT_H:
        return frame
    return np.asarray(cv2.resize(frame, (INPUT_W, INPUT_H), interpolation=cv2.INTER_AREA), np.uint8)


def to_input(frames: list[NDArray[np.uint8]] | NDArray[np.uint8]) -> NDArray[np.float32]:
    """A batch (n, 3, INPUT_H, INPUT_W) float32 in [0, 1] from frames already resized."""
    batch = np.ascontiguousarray(np.asarray(frames)[..., ::-1].transpose(0, 3, 1, 2))  # RGB
    return batch.astype(np.float32) * np.float32(1 / 255)


def scale_of(frame_shape: tuple[int, ...]) -> tuple[float, float]:
    """How to map input pixels back to the frame's: (sx, sy)."""
    return frame_shape[1] / INPUT_W, frame_shape[0] / INPUT_H


def boxes_to_input(boxes: NDArray[np.float32], frame_shape: tuple[int, ...]) -> NDArray[np.float32]:
    """Boxes in a frame's pixels as boxes in the network input's (x and y each scaled)."""
    sx, sy = scale_of(frame_shape)
    out: NDArray[np.float32] = (boxes / np.array([sx, sy, sx, sy], np.float32)).astype(np.float32)
    return out
