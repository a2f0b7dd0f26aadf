"""The trained network to ONNX, and ONNX to static INT8.

Static quantization (QDQ format, weights per channel, activations as unsigned 8-bit with
ranges measured on calibration frames) rather than dynamic: measured on this CPU, static
INT8 made a ResNet-18 3.5x faster while dynamic made it 3.6x slower (dynamic quantizes
activations at every call and ONNX Runtime has no dynamic INT8 convolution kernel).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision.preprocess import INPUT_H, INPUT_W, to_input

INPUT, OUTPUT = "image", "maps"


def to_onnx(model: Any, path: Path) -> Path:
    """Export ``model`` (a :class:`~loopline.apps.vision.detector.model.CenterNet`) with
    a batch of one, the runtime's shape."""
    import torch

    model.eval()
    dummy = torch.zeros(1, 3, INPUT_H, INPUT_W)
    with warnings.catch_warnings():
        # the TorchScript exporter (deprecated, and it says so twice): a plain graph of Conv,
        # Resize and Add that ONNX Runtime's quantizer takes as is; torch.export's exporter
        # needs onnxscript, which nothing else here needs
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (dummy,), str(path), input_names=[INPUT], output_names=[OUTPUT],
            opset_version=17, dynamo=False,
        )  # fmt: skip
    return path


def quantize(fp32: Path, int8: Path, calibration: NDArray[np.uint8]) -> Path:
    """Static INT8 (QDQ, per-channel weights) with activation ranges from ``calibration``
    frames (input size, BGR)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.items = iter(
                [{INPUT: to_input(calibration[i : i + 1])} for i in range(len(calibration))]
            )

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            return next(self.items, None)

    prepared = int8.with_suffix(".prep.onnx")
    quant_pre_process(str(fp32), str(prepared))
    quantize_static(
        str(prepared), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )  # fmt: skip
    prepared.unlink()
    return int8
