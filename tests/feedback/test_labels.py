"""Late and duplicate labels joined to the prediction log; performance by day, marked
provisional until its labels have matured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loopline.feedback import Label, LabelBook, matured_performance
from loopline.serving.decisions import COLUMNS, DecisionLog

DAY = 86_400_000
D0 = 20_000 * DAY  # a day boundary


def _decision(tid: str, day: int, decision: str, score: float) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        idempotency_key=tid, transaction_id=tid, payload_sha256="h", decided_ms=D0 + day * DAY + 1,
        decision=decision, score=score, model_version="fraud:1", arm="champion",
        rules_version="r", card_token="tok", features=b"{}", response=b"{}",
    )  # fmt: skip
    return row


def test_late_duplicate_labels_and_matured_days(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "decisions.db")
    log.write_sync(
        [
            _decision("a", 0, "decline", 0.9),  # fraud, caught
            _decision("b", 0, "review", 0.6),  # genuine, flagged
            _decision("c", 0, "approve", 0.2),  # fraud, missed (chargeback after confirmation)
            _decision("d", 0, "approve", 0.1),  # genuine
            _decision("e", 0, "approve", 0.3),  # no label yet
            _decision("f", 1, "decline", 0.8),  # day 1: fraud
        ]
    )
    log.close()
    book = LabelBook(tmp_path / "labels.db")
    assert book.add([Label("a", True, D0 + 3 * DAY), Label("b", False, D0 + 7 * DAY)]) == 2
    assert book.add([Label("c", False, D0 + 7 * DAY), Label("d", False, D0 + 7 * DAY)]) == 2
    assert book.add([Label("a", True, D0 + 4 * DAY)]) == 0, "a duplicate changes nothing"
    assert book.add([Label("c", True, D0 + 9 * DAY)]) == 1, "a late chargeback wins"
    assert book.add([Label("c", False, D0 + 10 * DAY)]) == 0, "and stays"
    book.add([Label("f", True, D0 + 2 * DAY)])

    days = matured_performance(tmp_path / "decisions.db", book, now_ms=D0 + 8 * DAY + 5)
    day0, day1 = days
    assert (day0.decisions, day0.labelled, day0.frauds) == (5, 4, 2)
    assert day0.precision == pytest.approx(1 / 2)  # a and b flagged, a is fraud
    assert day0.recall == pytest.approx(1 / 2)  # a caught, c missed
    # scores ranked: a 0.9 (fraud), b 0.6, c 0.2 (fraud), d 0.1 -> AP = (1 + 2/3) / 2
    assert day0.average_precision == pytest.approx((1 + 2 / 3) / 2)
    assert day0.provisional is False, "its labels have matured (7 days after the day)"
    assert day1.provisional is True
    assert (day1.decisions, day1.frauds, day1.recall) == (1, 1, 1.0)
    book.close()


def test_performance_by_segment(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "decisions.db")
    rows = [
        _decision("a", 0, "decline", 0.9) | {"features": b'{"channel_cnp": 1.0}'},
        _decision("b", 0, "approve", 0.2) | {"features": b'{"channel_cnp": 1.0}'},
        _decision("c", 0, "approve", 0.1) | {"features": b'{"channel_cnp": 0.0}'},
    ]
    log.write_sync(rows)
    log.close()
    book = LabelBook(tmp_path / "labels.db")
    book.add([Label("a", True, D0 + DAY), Label("b", True, D0 + DAY), Label("c", True, D0 + DAY)])
    by_channel = matured_performance(
        tmp_path / "decisions.db", book, now_ms=D0 + 9 * DAY, segment="feature:channel_cnp"
    )
    assert [(p.segment, p.decisions, p.recall) for p in by_channel] == [
        ("0.0", 1, 0.0),
        ("1.0", 2, 0.5),
    ]
    by_model = matured_performance(
        tmp_path / "decisions.db", book, now_ms=D0 + 9 * DAY, segment="model_version"
    )
    assert [(p.segment, p.decisions) for p in by_model] == [("fraud:1", 3)]
    with pytest.raises(ValueError, match="feature:<name>"):
        matured_performance(tmp_path / "decisions.db", book, now_ms=0, segment="card_token")
    book.close()
