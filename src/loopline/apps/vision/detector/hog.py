"""The baseline on pedestrians: OpenCV's HOG person detector (Dalal and Triggs, 2005, with
OpenCV's built-in linear SVM), run on the captured frame upscaled 4x so that people down
to ~24 px tall fill its 64x128 window (the generated pedestrians are mostly 26-36 px tall
at 640x384; measured on 30 frames: AP@0.5 0.00 at 2x, 0.23 at 3x, 0.34 at 4x, 0.7 s a
frame). Its boxes include the window's margin and are
shrunk as OpenCV's own people-detect sample does (15 % of the width, 5 % of the height on
each side); its SVM margin is the score."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision.boxes import CLASSES, Detections

PEDESTRIAN = CLASSES.index("pedestrian")


class HogPeople:
    def __init__(self, upscale: float = 4.0) -> None:
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(
            np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32)
        )
        self.upscale = upscale

    def __call__(self, frame: NDArray[np.uint8]) -> Detections:
        big = cv2.resize(
            frame, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR
        )
        rects, weights = self.hog.detectMultiScale(
            big, hitThreshold=-0.5, winStride=(8, 8), padding=(8, 8), scale=1.05
        )
        if len(rects) == 0:
            return Detections.empty()
        r = np.asarray(rects, np.float32) / self.upscale
        x, y, w, h = r[:, 0], r[:, 1], r[:, 2], r[:, 3]
        boxes = np.stack([x + 0.15 * w, y + 0.05 * h, x + 0.85 * w, y + 0.95 * h], 1)
        scores = np.asarray(weights, np.float32).reshape(-1)
        return Detections(boxes, scores, np.full(len(scores), PEDESTRIAN, np.int64))
