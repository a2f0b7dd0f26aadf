"""Ordered fallbacks for a model call: the model's own fallback engine (same version,
e.g. LightGBM behind ONNX Runtime), then the previous version, then no model at all (the
caller's last resort: rules alone, a default ranking, a cached answer). Each step down
adds its cause to the answer's ``degraded`` list, so every degraded answer says so."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from loopline.models import ServingModel

F64 = npt.NDArray[np.float64]
NO_MODEL = "rules-only"  # the label of an answer no model gave


def predict_ordered(
    model: ServingModel, previous: ServingModel | None, x: F64, degraded: list[str]
) -> tuple[F64, str]:
    """``model``'s outputs for rows ``x`` and the label of what gave them; ``NO_MODEL``
    with zeros when neither model could (or there were no inputs to give them:
    ``features_unavailable`` already in ``degraded``)."""
    if "features_unavailable" in degraded:
        degraded.append("rules_only")
        return np.zeros(len(x)), NO_MODEL
    for candidate in (model, previous):
        if candidate is None:
            continue
        try:
            outputs, fell_back = candidate.predict(x)
        except Exception:  # every engine of this version failed: try the next version
            degraded.append(f"model_error:{candidate.label}")
            continue
        if fell_back:
            degraded.append("model_fallback")
        if candidate is not model:
            degraded.append("previous_model")
        return np.asarray(outputs, dtype=np.float64), candidate.label
    degraded.append("rules_only")
    return np.zeros(len(x)), NO_MODEL
