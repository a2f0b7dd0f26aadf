"""The ``onnx-net`` flavour: a neural network exported to ONNX (from PyTorch, say),
served by ONNX Runtime. One file, ``model.onnx``, whose first input takes the rows of
inputs (float32) and whose first output gives one output per row, or a row of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.models.base import packed, warm_up
from loopline.models.onnx import session
from loopline.registry.bundle import Bundle, Pinned, Signature

F64 = npt.NDArray[np.float64]
FLAVOUR = "onnx-net"
ONNX_FILE = "model.onnx"


def pack(*, onnx: bytes, task: str, inputs: Sequence[str], **more: Any) -> Bundle:
    """The bundle of a network (``more``: outputs, meta, extra files, as
    :func:`loopline.models.base.packed` takes them)."""
    return packed(FLAVOUR, {ONNX_FILE: onnx}, task=task, inputs=inputs, **more)


@dataclass
class OnnxNet:
    """A network version: ONNX Runtime, no fallback engine (the previous version is the
    fallback, by the serving kernel's ordered fallbacks)."""

    name: str
    version: int
    signature: Signature
    session: Any
    pinned: Pinned | None = None

    def __post_init__(self) -> None:
        self._input = self.session.get_inputs()[0].name
        self._output = self.session.get_outputs()[0].name

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def predict(self, x: F64) -> tuple[F64, bool]:
        out = self.session.run([self._output], {self._input: np.asarray(x, dtype=np.float32)})
        got = np.asarray(out[0], dtype=np.float64)
        return (got.reshape(len(got)) if len(self.signature.outputs) == 1 else got), False


def load(pinned: Pinned, *, threads: int = 1) -> OnnxNet:
    signature = pinned.signature
    model = OnnxNet(
        name=pinned.name,
        version=pinned.version,
        signature=signature,
        session=session(pinned.read(ONNX_FILE), threads=threads),
        pinned=pinned,
    )
    warm_up(model)
    return model
