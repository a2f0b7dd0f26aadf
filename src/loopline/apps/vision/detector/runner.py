"""The detector at run time: an ONNX Runtime session on a fixed number of threads (one, on
the vehicle's core), the preprocessing, and the decoding. No PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from loopline.apps.vision.boxes import CLASSES, Detections
from loopline.apps.vision.detector.decode import decode
from loopline.apps.vision.detector.export import INPUT
from loopline.apps.vision.preprocess import resize, scale_of, to_input


class Detector:
    """Runs an exported detector (FP32 or INT8) on frames."""

    def __init__(
        self, model: Path | bytes, *, temperature: float = 1.0, threads: int = 1,
        min_score: float = 0.05,
    ) -> None:  # fmt: skip
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = str(model) if isinstance(model, Path) else model
        self.session = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
        self.temperature = temperature
        self.min_score = min_score

    def raw(self, inputs: NDArray[np.float32]) -> NDArray[np.float32]:
        """The network's output for a preprocessed batch."""
        return self.session.run(None, {INPUT: inputs})[0]  # type: ignore[no-any-return]

    def __call__(self, frame: NDArray[np.uint8]) -> Detections:
        """The detections in ``frame`` (any size, BGR), boxes in its pixels."""
        small = resize(frame)
        out = self.raw(to_input(small[None]))[0]
        return self.detections(out, scale_of(frame.shape))

    def detections(self, out: NDArray[np.float32], scale: tuple[float, float]) -> Detections:
        return decode(
            out, classes=len(CLASSES), temperature=self.temperature,
            min_score=self.min_score, scale=scale,
        )  # fmt: skip
