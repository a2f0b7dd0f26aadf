"""Training: time-based splits, deterministic LightGBM (binary, LambdaRank, multiclass),
a two-stage scorer, evaluation, thresholds per segment, ONNX export into a registry
bundle, reports.

Heavy dependencies (LightGBM, scikit-learn, ONNX, matplotlib) live here and are never
imported by ``import loopline``; install them with the ``ml`` extra.
"""

from loopline.training.boosting import BoostingConfig, Objective, train
from loopline.training.cascade import TwoStage
from loopline.training.distill import distill, logit
from loopline.training.evaluation import (
    Calibration,
    Operating,
    at_threshold,
    calibration,
    entity_precision_at_k,
    ranking,
    threshold_for_precision,
)
from loopline.training.export import (
    bundle,
    checked_onnx,
    max_abs_difference,
    model_bytes,
    task_of,
    to_onnx,
)
from loopline.training.report import svg, write_report
from loopline.training.segments import SegmentThresholds, threshold_for_recall
from loopline.training.split import TimeSplit

__all__ = [
    "BoostingConfig",
    "Calibration",
    "Objective",
    "Operating",
    "SegmentThresholds",
    "TimeSplit",
    "TwoStage",
    "at_threshold",
    "bundle",
    "calibration",
    "checked_onnx",
    "distill",
    "entity_precision_at_k",
    "logit",
    "max_abs_difference",
    "model_bytes",
    "ranking",
    "svg",
    "task_of",
    "threshold_for_precision",
    "threshold_for_recall",
    "to_onnx",
    "train",
    "write_report",
]
