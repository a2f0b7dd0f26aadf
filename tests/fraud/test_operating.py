"""The fraud model at an operating point, scenario by scenario: figures computed by hand,
segments, and the data set with the extended features on a tiny simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loopline.apps.fraud import data, quality_report
from loopline.apps.fraud.datasets import simulator_split
from loopline.apps.fraud.features import fraud_feature_set, risk_feature_set
from loopline.apps.fraud.operating import (
    amount_edges,
    by_scenario,
    flagged_by_scenario,
    label_evidence,
    risk_dataset,
    segments,
)
from loopline.apps.fraud.simulator import profile, simulate
from loopline.features.validate import validate

Y = np.array([1, 1, 1, 0, 0, 0, 0])
P = np.array([0.9, 0.4, 0.8, 0.7, 0.3, 0.2, 0.1])
SCENARIOS = np.array(["a", "a", "b", "genuine", "genuine", "genuine", "genuine"])


def test_each_scenario_against_all_genuine_traffic_by_hand() -> None:
    out = by_scenario(Y, P, SCENARIOS, {"global": 0.5})
    # a: its frauds at 0.9 and 0.4, genuine at 0.7, 0.3, 0.2, 0.1 (b's fraud left out):
    # precision 1 only at recall 1/2; recall 1 first at 0.4 (0.9, 0.7, 0.4 flagged), 2/3
    assert out["a"] == pytest.approx(
        {
            "frauds": 2,
            "recall_at_precision_99": 0.5,
            "precision_at_recall_95": 2 / 3,
            "average_precision": (1 + 2 / 3) / 2,
            "recall_at_global": 0.5,  # 0.9 reaches 0.5, 0.4 does not
        }
    )
    assert out["b"] == pytest.approx(
        {
            "frauds": 1,
            "recall_at_precision_99": 1.0,
            "precision_at_recall_95": 1.0,
            "average_precision": 1.0,
            "recall_at_global": 1.0,
        }
    )
    assert set(out) == {"a", "b"}


def test_flagged_rows_by_scenario_by_hand() -> None:
    out = flagged_by_scenario(P >= 0.5, Y, SCENARIOS)
    assert out == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "flagged": 3, "recall_a": 0.5, "recall_b": 1.0}
    )


def test_segments_are_channel_and_amount_band() -> None:
    edges = amount_edges(np.arange(1.0, 9.0))
    assert edges.tolist() == [2.75, 4.5, 6.25]
    seg = segments(np.array([1.0, 3.0, 5.0, 9.0]), np.array([1.0, 0.0, 1.0, 0.0]), edges)
    assert seg.tolist() == ["cnp|0", "cp|1", "cnp|2", "cp|3"]


def test_the_extended_set_and_label_evidence_on_a_tiny_simulation() -> None:
    p = profile("full", customers=150, terminals=300, days=90)
    ds = risk_dataset(p, simulator_split(p), seed=1)
    assert set(fraud_feature_set().names) < set(ds.names)
    assert ds.names == risk_feature_set().names
    assert ds.x.shape[1] == 53
    evidence, ceiling = label_evidence(ds, ds.parts["test"])
    test_frauds = int(ds.y[ds.parts["test"]].sum())
    assert sum(int(v["frauds"]) for v in evidence.values()) == test_frauds
    for figures in evidence.values():
        assert 0 <= figures["terminal_fraud_label_seen"] <= 1
    terminal = evidence.get("terminal", {"frauds": 0, "terminal_fraud_label_seen": 1.0})
    blind = terminal["frauds"] * (1 - terminal["terminal_fraud_label_seen"])
    assert ceiling == pytest.approx(1 - blind / test_frauds)


def test_the_extended_set_agrees_online_and_offline() -> None:
    """The label-risk views read late labels as of each transaction, as served."""
    sim = simulate(profile("full", customers=150, terminals=300, days=30), seed=3)
    streams = data.histories(sim.transactions, sim.labels)
    columns = {
        "transactions": data.columns(
            streams["transactions"].drop_columns(["_partition", "_offset"])
        ),
        "labels": data.columns(streams["labels"]),
    }
    rates = validate(risk_feature_set(), columns, sample=300, seed=3)
    assert len(rates) == 53
    assert rates == dict.fromkeys(rates, 0.0)


def test_the_quality_report_draws_levers_and_scenarios(tmp_path: Path) -> None:
    path = quality_report.write(
        tmp_path / "quality.html",
        y=Y,
        scenarios=SCENARIOS,
        scores={"one": P, "two": P[::-1].copy()},
        points={"one: chosen on validation": (0.5, 1.0)},
        lever_rows=[{"lever": "one", "AP": 0.9}],
        scenario_rows=[{"lever": "one", "scenario": "a", "frauds": 2}],
        evidence_rows=[{"scenario": "a", "terminal_fraud_label_seen": 0.5}],
        notes=["a note"],
    )
    text = path.read_text()
    assert text.count("<svg") == 2  # the levers' curves, the scenarios' curves
    assert "a (2 frauds) vs all genuine" in text
    assert "terminal_fraud_label_seen" in text
