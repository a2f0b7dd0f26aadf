"""ONNX export of a LightGBM model, the parity check that gates it, and the bundle it
is registered as (flavour ``onnx-trees``, :mod:`loopline.models.trees`).

ONNX Runtime is the serving fast path; LightGBM native is the fallback. The ONNX tree
ensemble works in float32, so inputs are rounded to float32 on both sides of the check:
that is what the server feeds either engine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType

from loopline.exceptions import ConfigError
from loopline.models import trees
from loopline.models.onnx import session
from loopline.registry.bundle import Bundle

OPSET = 15  # the newest ai.onnx opset onnxmltools' LightGBM converter supports
TOLERANCE = 1e-5  # the largest |ONNX - LightGBM| output a registered model may show
TASKS = {"binary": "binary", "lambdarank": "ranking", "multiclass": "multiclass"}


def task_of(booster: lgb.Booster) -> str:
    """The task of a trained booster, from its objective."""
    objective = str(booster.params.get("objective", "binary")).split()[0]
    return TASKS.get(objective, "regression")


def to_onnx(booster: lgb.Booster) -> bytes:
    """The model as ONNX bytes: input ``features`` (float32, [rows, features]); outputs
    ``label`` and ``probabilities`` for classifiers, one score column otherwise."""
    n = booster.num_feature()
    model = convert_lightgbm(
        booster,
        initial_types=[(trees.INPUT, FloatTensorType([None, n]))],
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
    tree_ids, features = attrs["nodes_treeids"].ints, attrs["nodes_featureids"].ints
    values = attrs["nodes_values"].floats
    with np.errstate(over="ignore"):  # thresholds beyond float32 become infinities, as in ONNX
        _replace(values, modes, tree_ids, features, doubles)


def _replace(
    values: Any,
    modes: list[str],
    tree_ids: Any,
    features: Any,
    doubles: dict[tuple[int, int], list[float]],
) -> None:
    for i, mode in enumerate(modes):
        if mode != "BRANCH_LEQ":
            continue
        v = np.float32(values[i])
        floors = {_floor32(t) for t in doubles[(tree_ids[i], features[i])] if np.float32(t) == v}
        if len(floors) == 1:
            values[i] = float(floors.pop())


def _floor32(t: float) -> np.float32:
    v = np.float32(t)
    return v if float(v) <= t else np.nextafter(v, np.float32(-np.inf))


def max_abs_difference(booster: lgb.Booster, onnx: bytes, x: npt.NDArray[np.floating]) -> float:
    """The largest |ONNX - LightGBM| output over rows ``x`` (rounded to float32)."""
    x32 = np.asarray(x, dtype=np.float32)
    native = np.asarray(booster.predict(x32.astype(np.float64)), dtype=np.float64)
    got = trees.predict_onnx(session(onnx), x32, task_of(booster))
    return float(np.abs(got - native.reshape(got.shape)).max(initial=0.0))


def checked_onnx(booster: lgb.Booster, x: npt.NDArray[np.floating]) -> tuple[bytes, float]:
    """The model in ONNX and its largest difference from LightGBM on ``x``; refused
    beyond :data:`TOLERANCE`."""
    onnx = to_onnx(booster)
    diff = max_abs_difference(booster, onnx, x)
    if diff > TOLERANCE:
        raise ConfigError(
            f"ONNX export differs from LightGBM by {diff:.2e} (> {TOLERANCE}); not registering it."
        )
    return onnx, diff


def model_bytes(booster: lgb.Booster) -> bytes:
    """The model in LightGBM's text format (what is stored and hashed)."""
    return booster.model_to_string().encode()


def bundle(
    booster: lgb.Booster,
    x_check: npt.NDArray[np.floating],
    *,
    outputs: Sequence[str] = ("score",),
    meta: Mapping[str, Any] | None = None,
    extra: Mapping[str, bytes] | None = None,
) -> tuple[Bundle, float]:
    """The registry bundle of a trained booster (its task from its objective; its inputs,
    its feature names), exported to ONNX and checked on rows ``x_check``; and the
    largest ONNX/LightGBM difference seen."""
    onnx, diff = checked_onnx(booster, x_check)
    packed = trees.pack(
        onnx=onnx,
        native=model_bytes(booster),
        task=task_of(booster),
        inputs=booster.feature_name(),
        outputs=outputs,
        meta=meta,
        extra=extra,
    )
    return packed, diff
