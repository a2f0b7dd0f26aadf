"""ONNX Runtime sessions, configured the one way loopline runs them."""

from __future__ import annotations

from typing import Any


def session(onnx_bytes: bytes, threads: int = 1) -> Any:
    """An ONNX Runtime session on the CPU with ``threads`` intra-op threads (1 per
    serving process: the process is the unit of scale), quiet about converter warnings."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
