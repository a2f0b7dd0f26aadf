"""What a model is asked to do, and how its answers are judged against labels.

A task ties together the training objective, the shape of a prediction's outputs, the
labels that arrive for it later, and the metrics that compare the two. Training, the
feedback loop's matured performance and the promotion gate all use the same metric
code, so a figure means the same thing at every stage.

- :class:`Binary`: a score per request, a 0/1 outcome; average precision.
- :class:`Ranking`: a ranked list of items per request, graded relevance per item;
  NDCG@k and recall@k.
- :class:`Multiclass`: class probabilities per request, the true class; accuracy,
  macro F1, log loss.

Labels of a request are a mapping ``subject -> value``: ``{"": 1.0}`` for a binary
outcome, ``{"item-42": 2.0, ...}`` for graded relevance or clicks, ``{"hate": 1.0}``
for a reviewer's verdict.

Pure NumPy: ``import loopline.tasks`` pulls in no ML library.
"""

from loopline.tasks.base import LabelValues, Metric, Outputs, Task
from loopline.tasks.binary import AveragePrecision, Binary, average_precision
from loopline.tasks.multiclass import Accuracy, MacroF1, Multiclass
from loopline.tasks.ranking import NDCG, Ranking, RecallAtK, dcg, ndcg_at_k

__all__ = [
    "NDCG",
    "Accuracy",
    "AveragePrecision",
    "Binary",
    "LabelValues",
    "MacroF1",
    "Metric",
    "Multiclass",
    "Outputs",
    "Ranking",
    "RecallAtK",
    "Task",
    "average_precision",
    "dcg",
    "ndcg_at_k",
]
