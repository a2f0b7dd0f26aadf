"""The device's upload queue: priority order, a bandwidth budget per window, bounds that
evict the least important item, counted and never silently."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopline.edge import Upload, UploadQueue
from loopline.exceptions import ConfigError


def item(upload_id: str, priority: int, size: int, reason: str = "sample") -> Upload:
    return Upload(id=upload_id, priority=priority, size=size, reason=reason, payload=b"x" * size)


def test_drain_sends_highest_priority_first_and_oldest_among_equals() -> None:
    q = UploadQueue(max_items=10, max_bytes=10_000)
    for upload_id, priority in [("a", 1), ("b", 5), ("c", 1), ("d", 5), ("e", 3)]:
        q.put(item(upload_id, priority, 10))
    assert [u.id for u in q.drain(budget_bytes=10_000)] == ["b", "d", "e", "a", "c"]
    assert len(q) == 0


def test_an_item_over_the_remaining_budget_is_skipped_not_split() -> None:
    q = UploadQueue(max_items=10, max_bytes=10_000)
    q.put(item("big", 9, 800))
    q.put(item("mid", 5, 300))
    q.put(item("small", 1, 150))
    q.put(item("tiny", 0, 100))
    sent = q.drain(budget_bytes=500)
    assert [u.id for u in sent] == ["mid", "small"]  # big skipped; tiny no longer fits
    assert sum(u.size for u in sent) <= 500
    assert [u.id for u in q.drain(budget_bytes=900)] == ["big", "tiny"]  # next window
    assert (q.counters_.sent, q.counters_.sent_bytes) == (4, 1350)
    assert q.drain(budget_bytes=0) == []


def test_a_full_queue_evicts_the_lowest_priority_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    evicted: list[str] = []
    q = UploadQueue(max_items=3, max_bytes=10_000, on_evict=lambda u: evicted.append(u.id))
    q.put(item("low-old", 1, 10))
    q.put(item("high", 9, 10))
    q.put(item("low-new", 1, 10))
    with caplog.at_level(logging.WARNING, "loopline.edge"):
        q.put(item("mid", 5, 10))  # over max_items: the newest of the lowest goes
    assert evicted == ["low-new"]
    assert any("low-new" in r.getMessage() for r in caplog.records)
    q.put(item("lower", 0, 10))  # the newcomer is itself the least important
    assert evicted == ["low-new", "lower"]
    assert (q.counters_.evicted, q.counters_.evicted_bytes) == (2, 20)
    assert [u.id for u in q.drain(budget_bytes=1000)] == ["high", "mid", "low-old"]


def test_the_byte_bound_evicts_until_the_newcomer_fits() -> None:
    q = UploadQueue(max_items=100, max_bytes=1000)
    for i in range(4):
        q.put(item(f"s{i}", 1, 200))
    q.put(item("failure", 8, 500))  # 1300 B: two 200 B samples must go
    assert q.size_bytes == 900
    assert sorted(u.id for u in q.drain(budget_bytes=10_000)) == ["failure", "s0", "s1"]
    assert q.counters_.evicted == 2


def test_an_item_larger_than_the_queue_is_evicted_alone() -> None:
    evicted: list[str] = []
    q = UploadQueue(max_items=10, max_bytes=1000, on_evict=lambda u: evicted.append(u.id))
    q.put(item("kept", 1, 900))
    q.put(item("huge", 99, 5000))
    assert evicted == ["huge"]
    assert [u.id for u in q.drain(budget_bytes=10_000)] == ["kept"]


def test_putting_an_id_again_replaces_it(tmp_path: Path) -> None:
    q = UploadQueue(max_items=10, max_bytes=10_000)
    q.put(item("clip", 1, 100))
    (tmp_path / "clip.bin").write_bytes(b"y" * 50)
    q.put(Upload(id="clip", priority=7, size=50, reason="failure", payload=tmp_path / "clip.bin"))
    assert (len(q), q.size_bytes, q.counters_.replaced) == (1, 50, 1)
    (sent,) = q.drain(budget_bytes=100)
    assert (sent.priority, sent.payload) == (7, tmp_path / "clip.bin")


def test_options_and_items_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_items"):
        UploadQueue(max_items=0, max_bytes=10)
    with pytest.raises(ConfigError, match="size"):
        Upload(id="a", priority=1, size=3, reason="r", payload=b"xy")
    with pytest.raises(ConfigError, match="budget_bytes"):
        UploadQueue(max_items=1, max_bytes=10).drain(budget_bytes=-1)


@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.integers(0, 5), st.integers(0, 400), st.booleans()),
        max_size=60,
    )
)
def test_bounds_and_counters_hold_whatever_arrives(
    steps: list[tuple[int, int, int, bool]],
) -> None:
    """Nothing is lost without a count: every put is queued, sent, evicted or replaced."""
    q = UploadQueue(max_items=5, max_bytes=1000)
    for n, (key, priority, size, drain) in enumerate(steps):
        if drain:
            sent = q.drain(budget_bytes=size)
            assert sum(u.size for u in sent) <= size
        else:
            q.put(item(f"u{key}-{n % 3}", priority, size))
        assert len(q) <= 5
        assert q.size_bytes <= 1000
        c = q.counters_
        assert c.queued == len(q) + c.sent + c.evicted + c.replaced
