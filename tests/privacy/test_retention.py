"""Retention per store: old records go, recent ones stay, in bounded passes."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pytest

from loopline.events import DeadLetterQueue, EmbeddedLog, Message, Record, TopicPartition
from loopline.exceptions import ConfigError
from loopline.predictions import Label, Row, open_prediction_log
from loopline.privacy.retention import DAY_MS, Retention, RetentionJob, expiries
from tests.predictions.test_logs import row
from tests.privacy.seed import COLUMNS

NOW_MS = 1_800_000_000_000


def test_each_store_keeps_its_own_days(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "events.db")
    log.create_topic("t", partitions=1)
    ages = [40, 31, 29, 1]  # days
    log.append_many("t", [Message(b"%d" % d, timestamp_ms=NOW_MS - d * DAY_MS) for d in ages])
    dlq = DeadLetterQueue(log, "t")
    for d in (20, 5):  # dead letters, by when they failed
        _send_at(dlq, NOW_MS - d * DAY_MS)
    predictions = open_prediction_log(tmp_path / "decisions.db", columns=COLUMNS)
    predictions.write_many([_decided(i, NOW_MS - d * DAY_MS) for i, d in enumerate((100, 80))])
    predictions.add_labels(
        [Label("r0", 1.0, NOW_MS - 70 * DAY_MS), Label("r1", 0.0, NOW_MS - 10 * DAY_MS)]
    )
    retention = Retention(events_days=30, dead_letters_days=7, predictions_days=90, labels_days=60)
    job = RetentionJob(
        expiries(retention, log=log, topics=["t"], dead_letters=[dlq], predictions=predictions),
        period_s=60, limit=1, clock=lambda: NOW_MS / 1000,
    )  # fmt: skip

    assert job.run_once() == {"event log": 1, "t.dlq": 1, "prediction log": 1, "labels": 1}
    assert job.run_once() == {"event log": 1, "t.dlq": 0, "prediction log": 0, "labels": 0}
    assert job.run_once()["event log"] == 0
    assert [r.value for r in log.read(TopicPartition("t", 0), 0)] == [b"29", b"1"]
    assert len(log.read(TopicPartition("t.dlq", 0), 0)) == 1
    assert predictions.count() == 1
    assert predictions.joined().labels == [{"": 0.0}]
    assert job.removed == {"event log": 2, "t.dlq": 1, "prediction log": 1, "labels": 1}
    predictions.close()


def test_the_job_runs_in_the_background_until_stopped(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "events.db")
    log.create_topic("t", partitions=1)
    log.append_many("t", [Message(b"old", timestamp_ms=1000)])
    job = RetentionJob(expiries(Retention(events_days=1), log=log), period_s=0.01)
    job.start()
    deadline = time.monotonic() + 5
    while job.removed["event log"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    job.stop()
    assert job.removed["event log"] == 1
    assert job.passes >= 1


def test_retention_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="'labels_days'"):
        Retention(labels_days=0)


def _send_at(dlq: DeadLetterQueue, failed_at_ms: int) -> None:
    record = Record("t", 0, 0, failed_at_ms, None, b"{}")
    with mock.patch("loopline.events.deadletter.time.time", return_value=failed_at_ms / 1000):
        dlq.send_many([(record, ValueError("bad"))])


def _decided(i: int, decided_ms: int) -> Row:
    return replace(row(i), decided_ms=decided_ms, columns={"decision": "x", "score": 0.1})
