"""The ``onnx-trees`` flavour: a gradient-boosted tree ensemble served by ONNX Runtime,
with the same version's LightGBM model as the fallback engine and path attributions
(:mod:`loopline.models.explain`) for single-output models.

Files: ``model.onnx`` (the fast path) and ``model.txt`` (LightGBM's text format).
:func:`pack` makes the bundle training registers; :func:`load` reads it back.

Outputs by task: ``binary``, the probability of the positive class (one per row);
``multiclass``, each class's probability (a row per row); ``ranking`` and
``regression``, the raw score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.models.base import packed, warm_up
from loopline.models.explain import PathExplainer
from loopline.models.onnx import session
from loopline.registry.bundle import Bundle, Pinned, Signature

F64 = npt.NDArray[np.float64]
FLAVOUR = "onnx-trees"
ONNX_FILE = "model.onnx"
NATIVE_FILE = "model.txt"
INPUT = "features"  # the ONNX graph's input name
PROBABILITIES = ("binary", "multiclass")  # tasks whose ONNX graph outputs class probabilities


def pack(*, onnx: bytes, native: bytes, task: str, inputs: Sequence[str], **more: Any) -> Bundle:
    """The bundle of a tree model: its ONNX and LightGBM forms (``more``: outputs, meta,
    extra files, as :func:`loopline.models.base.packed` takes them)."""
    return packed(FLAVOUR, {ONNX_FILE: onnx, NATIVE_FILE: native}, task=task, inputs=inputs, **more)


def predict_onnx(sess: Any, x: npt.NDArray[np.floating], task: str) -> F64:
    """The outputs of an ONNX tree ensemble for rows ``x`` (fed as float32)."""
    x32 = np.asarray(x, dtype=np.float32)
    if task in PROBABILITIES:
        probabilities = sess.run(["probabilities"], {INPUT: x32})[0]
        out = probabilities[:, 1] if task == "binary" else probabilities
    else:
        out = sess.run(None, {INPUT: x32})[0].reshape(len(x32))
    return np.asarray(out, dtype=np.float64)


@dataclass
class OnnxTrees:
    """A tree model version: ONNX Runtime first, LightGBM native if it fails."""

    name: str
    version: int
    signature: Signature
    onnx: Any
    booster: Any
    explainer: PathExplainer | None = None
    pinned: Pinned | None = None
    errors: int = 0  # calls the primary engine failed (the fallback answered)

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def predict(self, x: F64) -> tuple[F64, bool]:
        try:
            return predict_onnx(self.onnx, x, self.signature.task), False
        except Exception:
            self.errors += 1
            # the float32 rounding both engines see (what the export was checked on)
            native = np.asarray(x, np.float32).astype(np.float64)
            return np.asarray(self.booster.predict(native), dtype=np.float64), True

    def contributions(self, x: F64, top: int = 3) -> list[tuple[str, float]]:
        """The inputs pushing one row's output up most (path attributions, in the
        model's raw units: log-odds for a binary model)."""
        if self.explainer is None:
            return []
        inputs = self.signature.inputs
        contrib = self.explainer.explain(x[0], len(inputs))[0]
        order = np.argsort(-contrib)[:top]
        return [(inputs[i], float(contrib[i])) for i in order if contrib[i] > 0]


def load(pinned: Pinned, *, threads: int = 1) -> OnnxTrees:
    """Load a pinned tree model, both engines, and warm them up."""
    import lightgbm as lgb

    signature = pinned.signature
    booster = lgb.Booster(model_str=pinned.read(NATIVE_FILE).decode())
    single = booster.dump_model().get("num_tree_per_iteration", 1) == 1
    model = OnnxTrees(
        name=pinned.name,
        version=pinned.version,
        signature=signature,
        onnx=session(pinned.read(ONNX_FILE), threads=threads),
        booster=booster,
        explainer=PathExplainer.from_booster(booster) if single else None,
        pinned=pinned,
    )
    warm_up(model)
    return model
