"""The event-log contract, run against every backend (embedded, kafka, redis)."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from loopline.events import (
    Consumer,
    EventLog,
    Message,
    Record,
    TopicPartition,
    open_log,
    partition_for,
)
from loopline.exceptions import TopicExistsError, TopicNotFoundError

from .conftest import Backend

PARTITIONS = 4


def drain(consumer: Consumer, count: int, *, deadline_s: float = 30.0) -> list[Record]:
    """Poll until ``count`` records arrived (or the deadline passed)."""
    out: list[Record] = []
    deadline = time.monotonic() + deadline_s
    while len(out) < count and time.monotonic() < deadline:
        out += consumer.poll(max_records=200, timeout_s=0.2)
    return out


def messages(n: int, *, keys: int = 10, start_ms: int = 1_700_000_000_000) -> list[Message]:
    return [
        Message(
            f"value-{i}".encode() * 10, key=f"card-{i % keys}".encode(), timestamp_ms=start_ms + i
        )
        for i in range(n)
    ]


def test_batch_append_and_read_round_trip(log: EventLog, topic: str) -> None:
    log.create_topic(topic, partitions=PARTITIONS)
    sent = [*messages(300), Message(b"no key", timestamp_ms=5)]
    positions = log.append_many(topic, sent)

    read: dict[tuple[int, int], Record] = {}
    for p in range(PARTITIONS):
        tp = TopicPartition(topic, p)
        records = log.read(tp, 0, max_records=1000)
        assert [r.offset for r in records] == list(range(log.end_offset(tp)))
        read |= {(r.partition, r.offset): r for r in records}
    assert len(read) == len(sent)
    for message, position in zip(sent, positions, strict=True):
        record = read[position]
        assert (record.key, record.value, record.timestamp_ms) == (
            message.key,
            message.value,
            message.timestamp_ms,
        )
        if message.key is not None:
            assert record.partition == partition_for(message.key, PARTITIONS)


def test_read_from_an_offset_and_limit(log: EventLog, topic: str) -> None:
    log.create_topic(topic, partitions=1)
    log.append_many(topic, [Message(str(i).encode()) for i in range(50)])
    tp = TopicPartition(topic, 0)
    assert [r.value for r in log.read(tp, 45)] == [b"45", b"46", b"47", b"48", b"49"]
    assert [r.offset for r in log.read(tp, 10, max_records=3)] == [10, 11, 12]
    assert log.read(tp, 50) == []


def test_per_partition_order_through_a_group(
    log: EventLog, backend: Backend, topic: str, group: str
) -> None:
    log.create_topic(topic, partitions=PARTITIONS)
    for batch in range(5):
        log.append_many(topic, messages(100, start_ms=1_000_000 * (batch + 1)))
    consumer = log.consumer(group, [topic], session_timeout_s=backend.session_timeout_s)
    records = drain(consumer, 500)
    consumer.close()
    assert len(records) == 500
    by_partition: dict[int, list[int]] = defaultdict(list)
    by_key: dict[bytes | None, list[int]] = defaultdict(list)
    for r in records:
        by_partition[r.partition].append(r.offset)
        by_key[r.key].append(r.timestamp_ms)
    for offsets in by_partition.values():
        assert offsets == sorted(offsets)
        assert len(set(offsets)) == len(offsets)
    for times in by_key.values():  # append order per key is kept
        assert times == sorted(times)


def test_commit_and_resume(log: EventLog, backend: Backend, topic: str, group: str) -> None:
    log.create_topic(topic, partitions=2)
    log.append_many(topic, messages(100))
    first = log.consumer(group, [topic], session_timeout_s=backend.session_timeout_s)
    seen = drain(first, 100)
    first.commit()
    first.close()
    log.append_many(topic, messages(40, start_ms=2_000_000_000_000))

    second = log.consumer(group, [topic], session_timeout_s=backend.session_timeout_s)
    rest = drain(second, 40)
    extra = second.poll(timeout_s=0.5)
    second.close()
    assert len(seen) == 100
    assert len(rest) == 40
    assert not extra
    assert {(r.partition, r.offset) for r in seen}.isdisjoint(
        {(r.partition, r.offset) for r in rest}
    )
    assert min(r.timestamp_ms for r in rest) >= 2_000_000_000_000


def test_uncommitted_records_are_redelivered_after_a_crash(
    request: pytest.FixtureRequest, log: EventLog, backend: Backend, topic: str, group: str
) -> None:
    """kill -9 a consumer mid-stream: every record is delivered at least once overall."""
    if backend.name == "kafka":  # see the tansu_url fixture for why this broker
        backend = Backend("kafka", request.getfixturevalue("tansu_url"), backend.session_timeout_s)
        log = open_log(backend.url)
    log.create_topic(topic, partitions=PARTITIONS)
    log.append_many(topic, messages(total := 2000))
    script = Path(__file__).with_name("consume_forever.py")
    child = subprocess.Popen(
        [sys.executable, str(script), backend.url, group, topic, str(backend.session_timeout_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in child.stdout or []])
    reader.start()
    processed: set[tuple[int, int]] = set()
    deadline = time.monotonic() + 60
    while len(processed) < 100 and time.monotonic() < deadline:  # let it get well started
        with contextlib.suppress(queue.Empty):
            line = lines.get(timeout=0.1)
            processed |= {(int(p), int(o)) for p, o in (i.split(":") for i in line.split())}
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    reader.join()
    assert child.stdout is not None
    child.stdout.close()
    while not lines.empty():
        line = lines.get()
        processed |= {(int(p), int(o)) for p, o in (i.split(":") for i in line.split())}
    assert 100 <= len(processed) < total, "the child must die mid-stream"

    survivor = log.consumer(group, [topic], session_timeout_s=backend.session_timeout_s)
    deadline = time.monotonic() + 60
    redelivered: set[tuple[int, int]] = set()
    while len(processed | redelivered) < total and time.monotonic() < deadline:
        redelivered |= {(r.partition, r.offset) for r in survivor.poll(timeout_s=0.2)}
    survivor.close()
    assert len(processed | redelivered) == total
    assert len(redelivered) < total, "committed records must not all be redelivered"


def test_a_second_member_takes_partitions(
    log: EventLog, backend: Backend, topic: str, group: str
) -> None:
    log.create_topic(topic, partitions=PARTITIONS)
    log.append_many(topic, messages(40))
    everything = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    first = log.consumer(group, [topic], session_timeout_s=backend.session_timeout_s)
    deadline = time.monotonic() + 30
    while first.assignment() != everything and time.monotonic() < deadline:
        first.poll(timeout_s=0.1)
    assert first.assignment() == everything

    second = log.consumer(group, [topic], session_timeout_s=backend.session_timeout_s)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        first.poll(timeout_s=0.05)
        second.poll(timeout_s=0.05)
        a, b = set(first.assignment()), set(second.assignment())
        if a and b and a.isdisjoint(b) and a | b == set(everything):
            break
    assert second.assignment(), "the new member got no partition"
    assert set(first.assignment()).isdisjoint(second.assignment())
    assert set(first.assignment()) | set(second.assignment()) == set(everything)
    second.close()
    first.close()


def test_seek_to_an_offset_and_to_a_time(
    log: EventLog, backend: Backend, topic: str, group: str
) -> None:
    log.create_topic(topic, partitions=1)
    tp = TopicPartition(topic, 0)
    log.append_many(
        topic, [Message(str(i).encode(), timestamp_ms=10_000 + 10 * i) for i in range(100)]
    )
    assert log.offset_for_time(tp, 0) == 0
    assert log.offset_for_time(tp, 10_500) == 50
    assert log.offset_for_time(tp, 10_505) == 51
    assert log.offset_for_time(tp, 99_999_999) == 100

    consumer = log.consumer(group, [topic], session_timeout_s=backend.session_timeout_s)
    drain(consumer, 100)
    consumer.seek(tp, log.offset_for_time(tp, 10_900))
    assert [r.offset for r in drain(consumer, 10)] == list(range(90, 100))
    consumer.seek(tp, 3)
    assert [r.offset for r in drain(consumer, 2)][:2] == [3, 4]
    consumer.close()


def test_create_topic_is_idempotent_and_checks_partitions(log: EventLog, topic: str) -> None:
    log.create_topic(topic, partitions=3)
    log.create_topic(topic, partitions=3)
    assert log.partitions(topic) == 3
    with pytest.raises(TopicExistsError, match="3 partitions"):
        log.create_topic(topic, partitions=5)


def test_a_missing_topic_is_a_clear_error_in_bounded_time(log: EventLog, group: str) -> None:
    started = time.monotonic()
    with pytest.raises(TopicNotFoundError, match="'nowhere' does not exist") as excinfo:
        log.partitions("nowhere")
    assert "create_topic" in str(excinfo.value)
    with pytest.raises(TopicNotFoundError):
        log.append_many("nowhere", [Message(b"x")])
    with pytest.raises(TopicNotFoundError):
        log.read(TopicPartition("nowhere", 0), 0)
    with pytest.raises(TopicNotFoundError):
        log.consumer(group, ["nowhere"])
    assert time.monotonic() - started < 10
