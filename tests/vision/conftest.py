"""A detector exported to ONNX for the runtime's tests: untrained (random weights, width 8),
since these tests check the pipeline and the fail-safe, not quality."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def untrained_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from loopline.apps.vision.detector.export import to_onnx
    from loopline.apps.vision.detector.model import CenterNet

    torch.manual_seed(0)
    return to_onnx(CenterNet(width=8), tmp_path_factory.mktemp("detector") / "tiny.onnx")
