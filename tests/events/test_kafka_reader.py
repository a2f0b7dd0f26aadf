"""The Kafka log's positional reads leave nothing fetching in the background: an assigned
partition at its end made noida-db answer empty fetches in a loop (~40 % of a core for
one idle reader, measured), which starved the scale profile's scorers."""

from __future__ import annotations

import pytest

from loopline.events import Message, TopicPartition, open_log
from loopline.events.kafka import KafkaLog


@pytest.mark.kafka
def test_a_read_leaves_no_partition_assigned(kafka_url: str) -> None:
    log = open_log(kafka_url)
    assert isinstance(log, KafkaLog)
    log.create_topic("reader-idle", partitions=1)
    log.append_many("reader-idle", [Message(b"a"), Message(b"b")])
    tp = TopicPartition("reader-idle", 0)
    assert [r.value for r in log.read(tp, 0, max_records=1)] == [b"a"]
    assert log._reader is not None
    assert log._reader.assignment() == []
    assert [r.value for r in log.read(tp, 1)] == [b"b"], "the next read assigns again"
    assert log._reader.assignment() == []
    log.close()
