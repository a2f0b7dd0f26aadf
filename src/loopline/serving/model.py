"""A registered model loaded for serving: ONNX Runtime first, LightGBM native as the
fallback, both from the pinned version's files (MLflow is not called here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from loopline.serving.explain import PathExplainer

if TYPE_CHECKING:  # the registry module imports MLflow; serving needs only the type
    from loopline.registry import Pinned

F64 = npt.NDArray[np.float64]
Decision = Literal["approve", "review", "decline"]


@dataclass
class ServingModel:
    """One model version, loaded and warmed."""

    name: str
    version: int
    features: list[str]
    threshold: float  # decline at or above
    review_threshold: float  # review at or above (and below ``threshold``)
    onnx: Any
    booster: Any
    explainer: PathExplainer
    errors: int = 0
    fallbacks: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def decision(self, score: float, *, blocked: bool) -> Decision:
        """The model's operating point applied to a (rule-adjusted) score."""
        if blocked or score >= self.threshold:
            return "decline"
        return "review" if score >= self.review_threshold else "approve"

    def score(self, x: F64) -> tuple[F64, bool]:
        """Fraud probabilities for rows ``x`` and whether the fallback engine gave them."""
        from loopline.training.export import predict_onnx

        try:
            return predict_onnx(self.onnx, x), False
        except Exception:
            self.errors += 1
            self.fallbacks += 1
            return np.asarray(
                self.booster.predict(np.asarray(x, np.float32).astype(np.float64))
            ), True

    def contributions(self, x: F64, top: int = 3) -> list[tuple[str, float]]:
        """The features pushing one row's score up most (path attributions, in log-odds:
        :mod:`loopline.serving.explain`)."""
        contrib = self.explainer.explain(x[0], len(self.features))[0]
        order = np.argsort(-contrib)[:top]
        return [(self.features[i], float(contrib[i])) for i in order if contrib[i] > 0]


def load(pinned: Pinned, *, threads: int = 1) -> ServingModel:
    """Load a pinned version's ONNX and LightGBM files and warm both up."""
    import lightgbm as lgb

    from loopline.training.export import session

    meta = json.loads((pinned.path / "serving.json").read_text())
    onnx = session((pinned.path / "model.onnx").read_bytes(), threads=threads)
    booster = lgb.Booster(model_str=(pinned.path / "model.txt").read_text())
    model = ServingModel(
        name=pinned.name,
        version=pinned.version,
        features=list(meta["features"]),
        threshold=float(meta["threshold"]),
        review_threshold=float(meta.get("review_threshold", meta["threshold"])),
        onnx=onnx,
        booster=booster,
        explainer=PathExplainer.from_booster(booster),
    )
    reference = pinned.path / "reference.parquet"  # the drift monitor's, where registered
    if reference.exists():
        model.extra["reference"] = reference
    warm = np.zeros((8, len(model.features)))
    for _ in range(3):  # first calls allocate; do them before traffic arrives
        model.score(warm[:1])
        model.score(warm)
        model.contributions(warm[:1])
    return model
