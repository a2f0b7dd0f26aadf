"""Metrics by task, each checked against scikit-learn's (one implementation of average
precision for training, monitoring and the promotion gate)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, log_loss, ndcg_score

from loopline.tasks import NDCG, Binary, Multiclass, Ranking, RecallAtK, average_precision


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 6)), min_size=2, max_size=80),
    st.booleans(),
)
def test_average_precision_equals_scikit_learns_ties_included(
    rows: list[tuple[bool, int]], continuous: bool
) -> None:
    y = np.array([r[0] for r in rows], dtype=int)
    scores = np.array([r[1] for r in rows], dtype=float)
    if continuous:
        scores = scores + np.linspace(0, 0.5, len(scores))
    if y.sum() == 0:
        assert np.isnan(average_precision(y, scores))
        return
    assert average_precision(y, scores) == pytest.approx(average_precision_score(y, scores))


def test_ndcg_equals_scikit_learns_with_exponential_gains() -> None:
    rng = np.random.default_rng(0)
    outputs, labels, ours = [], [], []
    for _ in range(50):
        items = [f"i{j}" for j in range(8)]
        rel = rng.integers(0, 4, 8).astype(float)
        if rel.sum() == 0:
            continue
        scores = rng.random(8)
        ranked = [items[j] for j in np.argsort(-scores)]
        outputs.append({"items": ranked})
        labels.append(dict(zip(items, rel.tolist(), strict=True)))
        # scikit-learn's gains are linear: give it 2**rel - 1 to compare exponential gains
        ours.append(ndcg_score([2.0**rel - 1], [scores], k=5))
    metric = NDCG(k=5)
    assert metric.value(metric.arrays(outputs, labels)) == pytest.approx(np.mean(ours))


def test_ranking_leaves_out_requests_without_a_relevant_item_and_counts_recall() -> None:
    outputs = [{"items": ["a", "b", "c"]}, {"items": ["x"]}, {"items": ["c", "a"]}]
    labels = [{"b": 1.0, "z": 1.0}, {"x": 0.0}, {"a": 1.0}]
    report = Ranking(k=2).report(outputs, labels)
    assert report["requests_with_relevant"] == 2
    assert report["recall_at_2"] == pytest.approx((1 / 2 + 1) / 2)
    metric = RecallAtK(k=2)
    assert metric.support(metric.arrays(outputs, labels)) == 2


def test_multiclass_metrics_equal_scikit_learns() -> None:
    rng = np.random.default_rng(1)
    classes = ("spam", "hate", "ok")
    p = rng.dirichlet([1, 1, 1], 200)
    y = rng.integers(0, 3, 200)
    outputs = [{"probabilities": dict(zip(classes, row.tolist(), strict=True))} for row in p]
    labels = [{classes[c]: 1.0} for c in y]
    report = Multiclass(classes).report(outputs, labels)
    assert report["accuracy"] == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert report["macro_f1"] == pytest.approx(f1_score(y, p.argmax(1), average="macro"))
    assert report["log_loss"] == pytest.approx(log_loss(y, p, labels=[0, 1, 2]))


def test_binary_report_and_unscored_rows() -> None:
    task = Binary(flagged=lambda o: o["flag"])
    outputs = [
        {"score": 0.9, "flag": True},
        {"score": None, "flag": True},
        {"score": 0.1, "flag": False},
    ]
    labels = [{"": 1.0}, {"": 1.0}, {}]
    report = task.report(outputs, labels)
    assert report == {"positives": 2.0, "precision": 1.0, "recall": 1.0, "average_precision": 1.0}
    arrays = task.metric.arrays(outputs, labels)
    assert arrays[0].tolist() == [True, False, False], "no score or no label: not usable"
