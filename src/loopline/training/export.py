"""ONNX export of a LightGBM model, and the parity check that gates it.

ONNX Runtime is the serving fast path; LightGBM native is the fallback. The ONNX tree
ensemble works in float32, so inputs are rounded to float32 on both sides of the check:
that is what the server feeds either engine.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType

INPUT = "features"
OPSET = 15  # the newest ai.onnx opset onnxmltools' LightGBM converter supports


def to_onnx(booster: lgb.Booster) -> bytes:
    """The model as ONNX bytes: input ``features`` (float32, [rows, features]), outputs
    ``label`` and ``probabilities`` ([rows, 2])."""
    n = booster.num_feature()
    model = convert_lightgbm(
        booster,
        initial_types=[(INPUT, FloatTensorType([None, n]))],
        zipmap=False,
        target_opset=OPSET,
    )
    _round_thresholds_down(model, booster)
    model.graph.name = "loopline_lightgbm"  # the converter names it with a random UUID
    return bytes(model.SerializeToString())


def _round_thresholds_down(model: Any, booster: lgb.Booster) -> None:
    """Make the float32 trees decide exactly as LightGBM's float64 ones.

    LightGBM sends ``x <= t`` left with ``t`` a double; the converter stores ``t`` rounded
    to the *nearest* float32, so a float32 input between the two goes the other way (on
    real features, e.g. coordinates with 5 decimals, that happens all the time). For a
    float32 ``x``, ``x <= t`` holds exactly when ``x <= floor32(t)``: each threshold is
    replaced by the largest float32 not above its double.
    """
    doubles: dict[tuple[int, int], list[float]] = defaultdict(list)
    for tree, info in enumerate(booster.dump_model()["tree_info"]):
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                doubles[(tree, node["split_feature"])].append(float(node["threshold"]))
                stack.extend((node["left_child"], node["right_child"]))
    ensemble = next(n for n in model.graph.node if n.op_type.startswith("TreeEnsemble"))
    attrs = {a.name: a for a in ensemble.attribute}
    modes = [m.decode() for m in attrs["nodes_modes"].strings]
    trees, features = attrs["nodes_treeids"].ints, attrs["nodes_featureids"].ints
    values = attrs["nodes_values"].floats
    with np.errstate(over="ignore"):  # thresholds beyond float32 become infinities, as in ONNX
        _replace(values, modes, trees, features, doubles)


def _replace(
    values: Any,
    modes: list[str],
    trees: Any,
    features: Any,
    doubles: dict[tuple[int, int], list[float]],
) -> None:
    for i, mode in enumerate(modes):
        if mode != "BRANCH_LEQ":
            continue
        v = np.float32(values[i])
        floors = {_floor32(t) for t in doubles[(trees[i], features[i])] if np.float32(t) == v}
        if len(floors) == 1:
            values[i] = float(floors.pop())


def _floor32(t: float) -> np.float32:
    v = np.float32(t)
    return v if float(v) <= t else np.nextafter(v, np.float32(-np.inf))


def session(onnx_bytes: bytes, threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime session on the CPU, quiet about the converter's label shape."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def predict_onnx(
    sess: ort.InferenceSession, x: npt.NDArray[np.floating]
) -> npt.NDArray[np.float64]:
    """Fraud probabilities for rows ``x``."""
    out = sess.run(["probabilities"], {INPUT: np.asarray(x, dtype=np.float32)})[0]
    return np.asarray(out[:, 1], dtype=np.float64)


def max_abs_difference(
    booster: lgb.Booster, sess: ort.InferenceSession, x: npt.NDArray[np.floating]
) -> float:
    """The largest |ONNX - LightGBM| probability over rows ``x`` (rounded to float32)."""
    x32 = np.asarray(x, dtype=np.float32)
    native = np.asarray(booster.predict(x32.astype(np.float64)), dtype=np.float64)
    return float(np.abs(predict_onnx(sess, x32) - native).max(initial=0.0))
