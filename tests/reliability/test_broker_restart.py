"""The Kafka-protocol broker restarted mid-run (noida-db keeps its data on disk): what was
acknowledged before is still there, the consumer group resumes from its committed
offsets, and nothing is lost across the restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loopline.events import Consumer, Message, Record, open_log
from loopline.servers import noida_broker

pytestmark = pytest.mark.kafka

TOPIC = "payments"
GROUP = "scorers"


def _messages(lo: int, hi: int) -> list[Message]:
    return [Message(f"tx-{i}".encode(), key=f"card-{i % 13}".encode()) for i in range(lo, hi)]


def _drain(consumer: Consumer, count: int, deadline_s: float = 30.0) -> list[Record]:
    out: list[Record] = []
    deadline = time.monotonic() + deadline_s
    while len(out) < count and time.monotonic() < deadline:
        out += consumer.poll(max_records=500, timeout_s=0.2)
    return out


def test_a_restarted_broker_loses_nothing_and_the_group_resumes(tmp_path: Path) -> None:
    with noida_broker(tmp_path) as first:
        port = first.port
        log = open_log(first.url, timeout_s=10)
        log.create_topic(TOPIC, partitions=3)
        log.append_many(TOPIC, _messages(0, 3000))  # acknowledged
        consumer = log.consumer(GROUP, [TOPIC], session_timeout_s=6.0)
        before = _drain(consumer, 1500)
        consumer.commit()  # what the group has processed so far
        consumer.close()
        log.close()
    # stopped: a restart on the same data and port
    with noida_broker(tmp_path, port=port) as second:
        log = open_log(second.url, timeout_s=10)
        log.append_many(TOPIC, _messages(3000, 4000))
        consumer = log.consumer(GROUP, [TOPIC], session_timeout_s=6.0)
        after = _drain(consumer, 4000 - len(before))
        extra = consumer.poll(max_records=500, timeout_s=1.0)
        consumer.close()
        log.close()
    assert len(before) >= 1500
    values = [r.value for r in before + after + extra]
    assert sorted(set(values)) == sorted(f"tx-{i}".encode() for i in range(4000)), "none lost"
    assert len(values) == 4000, "resumed at the committed offsets: nothing read twice"
