"""The feedback loop: late labels into the prediction log, matured performance by the
task's metrics, the promotion gate, and the retraining loop that ties them together."""

from loopline.feedback.outcomes import DayPerformance, LabelFeed, matured_performance
from loopline.feedback.promotion import (
    Evidence,
    GateResult,
    gate,
    paired_p99_ms,
    shadow_evidence,
)
from loopline.feedback.retraining import Policy, RetrainingLoop, Rollout, Stage, Trigger

__all__ = [
    "DayPerformance",
    "Evidence",
    "GateResult",
    "LabelFeed",
    "Policy",
    "RetrainingLoop",
    "Rollout",
    "Stage",
    "Trigger",
    "gate",
    "matured_performance",
    "paired_p99_ms",
    "shadow_evidence",
]
