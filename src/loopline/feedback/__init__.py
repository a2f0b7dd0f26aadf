"""The feedback loop: late labels into the prediction log, matured performance by the
task's metrics, the promotion gate, the retraining loop that ties them together, and
online experiments (A/B tests, interleaving)."""

from loopline.feedback.experiments import (
    ABResult,
    Interleaved,
    InterleavingResult,
    ab_test,
    assign,
    credit,
    interleaving_test,
    team_draft,
)
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
    "ABResult",
    "DayPerformance",
    "Evidence",
    "GateResult",
    "Interleaved",
    "InterleavingResult",
    "LabelFeed",
    "Policy",
    "RetrainingLoop",
    "Rollout",
    "Stage",
    "Trigger",
    "ab_test",
    "assign",
    "credit",
    "gate",
    "interleaving_test",
    "matured_performance",
    "paired_p99_ms",
    "shadow_evidence",
    "team_draft",
]
