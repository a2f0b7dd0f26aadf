"""Training: time-based splits, deterministic LightGBM, evaluation, ONNX export, reports.

Heavy dependencies (LightGBM, scikit-learn, ONNX, matplotlib) live here and are never
imported by ``import loopline``; install them with the ``ml`` extra.
"""

from loopline.training.boosting import BoostingConfig, model_bytes, sha256, train
from loopline.training.export import max_abs_difference, predict_onnx, session, to_onnx
from loopline.training.metrics import (
    Calibration,
    Operating,
    at_threshold,
    calibration,
    card_precision_at_k,
    ranking,
    threshold_for_precision,
)
from loopline.training.report import write_report
from loopline.training.split import TimeSplit

__all__ = [
    "BoostingConfig",
    "Calibration",
    "Operating",
    "TimeSplit",
    "at_threshold",
    "calibration",
    "card_precision_at_k",
    "max_abs_difference",
    "model_bytes",
    "predict_onnx",
    "ranking",
    "session",
    "sha256",
    "threshold_for_precision",
    "to_onnx",
    "train",
    "write_report",
]
