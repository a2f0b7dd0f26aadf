"""``loopline demo recs`` end to end, small: every phase runs and the report is written."""

from __future__ import annotations

from pathlib import Path

from loopline.apps.recs.model import RecsConfig
from loopline.apps.recs.retrieval import RetrievalConfig
from loopline.demos.recs.demo import run
from loopline.training import BoostingConfig

SMALL = RecsConfig(
    retrieval=RetrievalConfig(factors=16, iterations=4),
    per_retriever=40,
    popular=20,
    ranker=BoostingConfig(objective="lambdarank", num_boost_round=20, num_leaves=3),
)


def test_the_demo_runs_every_phase_and_writes_its_report(tmp_path: Path) -> None:
    said: list[str] = []
    result = run(tmp_path, sessions=120, config=SMALL, say=said.append)
    report = (tmp_path / "recs-report.html").read_text()
    assert "simulator" in report
    assert "<svg" in report
    assert set(result["quality"]) == {"v1", "v2"}
    for version in result["quality"].values():
        assert 0 < version["candidate_recall"] <= 1
        assert 0 < version["ndcg_at_10"] < 1
    assert result["ab"]["n_control"] + result["ab"]["n_treatment"] > 50
    assert result["interleaving"]["wins_a"] + result["interleaving"]["wins_b"] > 0
    explore = result["exploration"]
    assert explore["with"]["coverage"] > explore["without"]["coverage"]
    assert len(said) >= 7  # progress for each phase
