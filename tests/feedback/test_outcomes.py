"""Late and duplicate labels joined to the prediction log; performance by day by the
task's metrics, marked provisional until its labels have matured; on SQLite and on a
real PostgreSQL server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopline.events import EmbeddedLog, Message
from loopline.feedback import LabelFeed, matured_performance
from loopline.predictions import Column, Label, Log, Row, open_prediction_log
from loopline.tasks import Binary, Ranking

DAY = 86_400_000
D0 = 20_000 * DAY  # a day boundary
TASK = Binary(score="score", flagged=lambda outputs: outputs["decision"] != "approve")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Log:
    columns = (Column("decision"),)
    if request.param == "sqlite":
        return open_prediction_log(tmp_path / "predictions.db", columns=columns)
    from tests.predictions.test_logs import fresh_database

    url = fresh_database(request.getfixturevalue("postgres_url"), "outcomes")
    return open_prediction_log(url, columns=columns)


def _prediction(rid: str, day: int, decision: str, score: float, **inputs: float) -> Row:
    outputs = {"score": score, "decision": decision}
    return Row(
        rid, rid, "h", D0 + day * DAY + 1, "key", "m:1", "champion",
        json.dumps(inputs).encode(), json.dumps(outputs).encode(), b"{}",
        columns={"decision": decision},
    )  # fmt: skip


def test_late_duplicate_labels_and_matured_days(log: Log) -> None:
    log.write_many(
        [
            _prediction("a", 0, "decline", 0.9),  # positive, caught
            _prediction("b", 0, "review", 0.6),  # negative, flagged
            _prediction("c", 0, "approve", 0.2),  # positive, missed (confirmed, then charged back)
            _prediction("d", 0, "approve", 0.1),  # negative
            _prediction("e", 0, "approve", 0.3),  # no label yet
            _prediction("f", 1, "decline", 0.8),  # day 1: positive
        ]
    )
    assert (
        log.add_labels([Label("a", 1, D0 + 3 * DAY), Label("b", 0, D0 + 7 * DAY)], keep="max") == 2
    )
    assert (
        log.add_labels([Label("c", 0, D0 + 7 * DAY), Label("d", 0, D0 + 7 * DAY)], keep="max") == 2
    )
    assert log.add_labels([Label("a", 1, D0 + 4 * DAY)], keep="max") == 0, "a duplicate: nothing"
    assert log.add_labels([Label("c", 1, D0 + 9 * DAY)], keep="max") == 1, "a late positive wins"
    assert log.add_labels([Label("c", 0, D0 + 10 * DAY)], keep="max") == 0, "and stays"
    log.add_labels([Label("f", 1, D0 + 2 * DAY)], keep="max")

    day0, day1 = matured_performance(log, TASK, now_ms=D0 + 8 * DAY + 5)
    assert (day0.predictions, day0.labelled, day0.metrics["positives"]) == (5, 4, 2)
    assert day0.metrics["precision"] == pytest.approx(1 / 2)  # a and b flagged, a positive
    assert day0.metrics["recall"] == pytest.approx(1 / 2)  # a caught, c missed
    # scores ranked: a 0.9 (positive), b 0.6, c 0.2 (positive), d 0.1 -> AP = (1 + 2/3) / 2
    assert day0.metrics["average_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert day0.provisional is False, "its labels have matured (7 days after the day)"
    assert day1.provisional is True
    assert (day1.predictions, day1.metrics["positives"], day1.metrics["recall"]) == (1, 1, 1.0)
    log.close()


def test_performance_by_segment(log: Log) -> None:
    log.write_many(
        [
            _prediction("a", 0, "decline", 0.9, channel=1.0),
            _prediction("b", 0, "approve", 0.2, channel=1.0),
            _prediction("c", 0, "approve", 0.1, channel=0.0),
        ]
    )
    log.add_labels([Label(x, 1.0, D0 + DAY) for x in "abc"])
    by_input = matured_performance(log, TASK, now_ms=D0 + 9 * DAY, segment="input:channel")
    assert [(p.segment, p.predictions, p.metrics["recall"]) for p in by_input] == [
        ("0.0", 1, 0.0),
        ("1.0", 2, 0.5),
    ]
    by_decision = matured_performance(log, TASK, now_ms=D0 + 9 * DAY, segment="decision")
    assert [(p.segment, p.predictions) for p in by_decision] == [("approve", 2), ("decline", 1)]
    with pytest.raises(ValueError, match="input:<name>"):
        matured_performance(log, TASK, now_ms=0, segment="routing_key")
    log.close()


def test_graded_relevance_from_a_topic_gives_ndcg_by_day(log: Log, tmp_path: Path) -> None:
    """Clicks on items arrive as events; the feed keeps its offset with the labels, and a
    ranking task's NDCG@2 comes out of the same query."""
    shown = {"r1": ["x", "y", "z"], "r2": ["y", "x", "z"]}
    log.write_many(
        [
            Row(rid, rid, "h", D0 + 1, "user", "m:1", "champion", b"{}",
                json.dumps({"items": items}).encode(), b"{}", columns={"decision": "ranked"})
            for rid, items in shown.items()
        ]
    )  # fmt: skip
    events = EmbeddedLog(tmp_path / "events.db")
    events.create_topic("clicks", partitions=1)
    clicks = [("r1", "x", 2.0), ("r1", "z", 1.0), ("r2", "x", 2.0), ("r2", "x", 2.0)]
    events.append_many("clicks", [Message(json.dumps([r, i, v]).encode()) for r, i, v in clicks])

    def decode(records: list) -> list[Label]:  # type: ignore[type-arg]
        return [
            Label(r, v, D0 + 2, subject=i) for r, i, v in (json.loads(x.value) for x in records)
        ]

    feed = LabelFeed(events, log, topic="clicks", decode=decode, keep="max")
    assert feed.run_once() == 4
    assert feed.run_once() == 0, "nothing is read twice"
    (day,) = matured_performance(log, Ranking(k=2), now_ms=D0 + 10 * DAY)
    # r1: x (gain 3) at rank 1, z (1) beyond rank 2: DCG 3, ideal 3 + 1/log2(3): 0.8262
    # r2: y (0), then x (3) at rank 2: DCG 3/log2(3), ideal 3: 0.6309
    assert day.metrics["ndcg_at_2"] == pytest.approx((3 / (3 + 1 / 1.5849625) + 1 / 1.5849625) / 2)
    assert day.metrics["recall_at_2"] == pytest.approx((1 / 2 + 1) / 2)
    events.close()
    log.close()
