"""Erasure and retention on the embedded event log keep offsets: no record changes its
offset, no offset is given out twice, a consumer's stored offset still works."""

from __future__ import annotations

from pathlib import Path

from loopline.events import EmbeddedLog, Message, TopicPartition

TP = TopicPartition("t", 0)


def log_with(tmp_path: Path, n: int) -> EmbeddedLog:
    log = EmbeddedLog(tmp_path / "events.db")
    log.create_topic("t", partitions=1)
    log.append_many("t", [Message(b"v%d" % i, key=b"k", timestamp_ms=1000 + i) for i in range(n)])
    return log


def test_erasing_keeps_every_other_offset_and_the_end(tmp_path: Path) -> None:
    log = log_with(tmp_path, 10)
    group = log.consumer("g", ["t"])
    assert len(group.poll(max_records=4, timeout_s=1)) == 4
    group.commit()  # stored offset 4
    erased = log.erase(lambda r: r.value in (b"v4", b"v5", b"v9"))
    assert erased == 3
    assert log.end_offset(TP) == 10  # the last record went, its offset did not
    assert log.append_many("t", [Message(b"v10", key=b"k")]) == [(0, 10)]
    group.close()
    resumed = log.consumer("g", ["t"])
    got = resumed.poll(max_records=100, timeout_s=1)
    assert [(r.offset, r.value) for r in got] == [
        (6, b"v6"), (7, b"v7"), (8, b"v8"), (10, b"v10"),
    ]  # fmt: skip
    resumed.close()
    for t in (1004, 1005, 1006):  # in the gap or after it: reading from there starts at 6
        assert log.read(TP, log.offset_for_time(TP, t))[0].offset == 6
    assert log.read(TP, log.offset_for_time(TP, 1007))[0].offset == 7


def test_expiry_is_bounded_takes_a_prefix_and_keeps_the_end(tmp_path: Path) -> None:
    log = log_with(tmp_path, 10)
    assert log.expire(1007, limit=3) == 3
    assert log.expire(1007, limit=3) == 3
    assert log.expire(1007, limit=3) == 1
    assert log.expire(1007) == 0
    assert [r.offset for r in log.read(TP, 0)] == [7, 8, 9]
    assert log.expire(10_000) == 3
    assert log.read(TP, 0) == []
    assert log.end_offset(TP) == 10
    assert log.append_many("t", [Message(b"new")]) == [(0, 10)]
