"""The feedback loop: late labels joined to the prediction log; matured performance."""

from loopline.feedback.labels import (
    DayPerformance,
    Label,
    LabelBook,
    labels_from_json,
    matured_performance,
)

__all__ = ["DayPerformance", "Label", "LabelBook", "labels_from_json", "matured_performance"]
