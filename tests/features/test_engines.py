"""The window rule, lateness and restart, on hand-computed cases, for both engines."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from loopline.events import TopicPartition
from loopline.exceptions import ConfigError
from loopline.features import (
    Aggregation,
    EmbeddedStore,
    Entity,
    FeatureView,
    OnlineEngine,
    Source,
    training_set,
)

VIEW = FeatureView(
    name="v",
    entity=Entity(name="card", join_key="card"),
    source=Source(name="tx", topic="tx", timestamp="ts"),
    allowed_lateness_ms=250,
    aggregations=(
        Aggregation(function="count", windows=(300,), hop=100),
        Aggregation(function="sum", column="amount", windows=(300,), hop=100),
    ),
)
TIMES = [0, 99, 100, 250, 299, 300]


def batch(times: list[int], card: str = "a") -> dict[str, np.ndarray]:
    return {
        "card": np.array([card] * len(times)),
        "ts": np.array(times, dtype=np.int64),
        "amount": np.array([float(t) for t in times]),
    }


@pytest.mark.parametrize(
    ("t", "count", "total"),
    [
        (299, 5, 748.0),  # tiles 0..2, events <= 299
        (300, 4, 949.0),  # tiles 1..3: 0 and 99 left with tile 0
        (399, 4, 949.0),
        (400, 3, 849.0),  # tiles 2..4: 250, 299, 300
        (500, 1, 300.0),  # tiles 3..5
        (699, 0, 0.0),
    ],
)
def test_the_window_rule_on_tile_edges(tmp_path: Path, t: int, count: int, total: float) -> None:
    engine = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    engine.update_many(batch([x for x in TIMES if x <= t]))  # what had arrived by t
    (online,) = engine.read("v", ["a"], as_of_ms=t)
    history = pa.table({"card": ["a"] * 6, "ts": TIMES, "amount": [float(x) for x in TIMES]})
    (offline,) = training_set(VIEW, history, pa.table({"card": ["a"], "ts": [t]})).to_pylist()
    assert online.values == {"count_300ms": count, "amount_sum_300ms": total}
    assert (offline["v__count_300ms"], offline["v__amount_sum_300ms"]) == (count, total)


def test_late_events_are_dropped_and_reported(tmp_path: Path) -> None:
    engine = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    late = engine.update_many(batch([1000, 760, 740, 1200, 940]))[f"v@{VIEW.version}"]
    assert late.tolist() == [False, False, True, False, True]  # watermark - 250
    (values,) = engine.read("v", ["a"], as_of_ms=1200)
    assert values.values["count_300ms"] == 2  # 1000 and 1200: tile 10..12
    assert values.freshness_ms == 1200
    assert values.freshness_lag_ms == 0


def test_an_event_from_the_future_is_refused_and_freezes_nothing(tmp_path: Path) -> None:
    # one event a day ahead of the clock once moved the watermark there and made every
    # real event late (issue 14, defect 2)
    now = 1_000_000
    engine = OnlineEngine(
        views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"), clock=lambda: now / 1000
    )
    engine.update_many(batch([now - 50]))
    (refused,) = engine.update_many(batch([now + 86_400_000], card="attacker")).values()
    assert refused.tolist() == [True]
    (late,) = engine.update_many(batch([now, now + 10])).values()
    assert late.tolist() == [False, False]
    (online,) = engine.read("v", ["a"], as_of_ms=now + 10)
    assert online.values["count_300ms"] == 3


def test_a_restart_resumes_state_and_offsets(tmp_path: Path) -> None:
    tp = TopicPartition("tx", 0)
    engine = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    engine.update_many(batch([100, 150]), offsets={tp: 2})
    engine.update_many(batch([160], card="b"), offsets={tp: 3})
    engine.store.close()

    again = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    assert again.offset(tp) == 3
    a, b, c = again.read("v", ["a", "b", "nobody"], as_of_ms=200)
    assert (a.values["count_300ms"], b.values["count_300ms"]) == (2, 1)
    assert c.values["count_300ms"] == 0
    assert c.freshness_ms is None


def test_state_across_ring_blocks_survives_snapshots_and_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 cards in blocks of 7 slots: snapshots copy new blocks whole and changed slots of
    old ones; a store reopened with another block size reads the same values (the stored
    rows do not depend on the blocks)."""
    from loopline.features import ring

    rng = np.random.default_rng(3)
    cards = np.array([f"c{i}" for i in range(300)])
    events = [
        {
            "card": cards[rng.integers(0, 300, 400)],
            "ts": np.sort(rng.integers(s, s + 100, 400)),
            "amount": rng.random(400),
        }
        for s in (0, 100, 200)
    ]
    monkeypatch.setattr(ring, "block_slots", lambda ring, width: 7)
    store = EmbeddedStore(tmp_path / "s.db")
    engine = OnlineEngine(views=[VIEW], store=store)
    reference = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "ref.db"))
    first = {k: v[:200] for k, v in events[0].items()}  # a snapshot of few blocks, then
    batches = [first, {k: v[200:] for k, v in events[0].items()}, *events[1:]]  # more blocks
    for cols in batches:
        engine.update_many(cols)
        reference.update_many(cols)
        store.snapshot()
    engine.store.close()
    monkeypatch.undo()
    again = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    keys = [*cards.tolist(), "nobody"]
    for got, want in zip(
        again.read("v", keys, as_of_ms=299), reference.read("v", keys, as_of_ms=299), strict=True
    ):
        assert got.values == want.values
    assert sum(r.values["count_300ms"] for r in again.read("v", keys, as_of_ms=299)) == 1200
    again.store.close()
    reference.store.close()


def test_a_snapshot_being_written_holds_the_state_it_was_taken_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits copy their tiles into the snapshot's copy, but not while a snapshot of it
    is being written (at the lowest priority): the file holds the state of the moment it
    was taken, and the next snapshot the batches that came meanwhile."""
    import os
    import threading

    store = EmbeddedStore(tmp_path / "s.db", snapshot_interval_s=1e-9)  # due at every commit
    write, release, niceness = store._write, threading.Event(), []

    def slow_write(*state: object) -> None:
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        release.wait(10)
        write(*state)

    monkeypatch.setattr(store, "_write", slow_write)
    engine = OnlineEngine(views=[VIEW], store=store)
    engine.update_many(batch([0, 50]))  # a snapshot of these two starts, and waits
    engine.update_many(batch([60, 70, 80]))  # committed while it is being written
    release.set()
    store._join()

    def count_in(path: Path) -> float:
        again = EmbeddedStore(path)
        (read,) = OnlineEngine(views=[VIEW], store=again).read("v", ["a"], as_of_ms=99)
        again._conn.close()
        return float(read.values["count_300ms"])

    first = tmp_path / "first.db"
    store._conn.execute(f"VACUUM INTO '{first}'")
    assert count_in(first) == 2
    engine.update_many(batch([90]))  # the copy catches up, and the next snapshot has all
    store.close()
    assert count_in(tmp_path / "s.db") == 6
    if sys.platform == "linux":  # nice is per thread: the writers', not the caller's
        assert niceness == [19, 19, os.getpriority(os.PRIO_PROCESS, 0)]  # close(): in line


def test_idle_entities_give_their_slots_to_new_ones(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s.db")
    engine = OnlineEngine(views=[VIEW], store=store)
    version = VIEW.version
    engine.update_many(batch([0, 50], card="old"))
    engine.update_many(batch([450], card="recent"))  # tile 4; the ring holds 3 tiles
    assert store.evict_idle() == 0, "idle for less than two ring spans: kept"
    (old,) = engine.read("v", ["old"], as_of_ms=250)  # a read lagging the present
    assert old.values["count_300ms"] == 2
    engine.update_many(batch([1000], card="recent"))  # tile 10: "old" idle for 10 tiles
    assert store.evict_idle() == 1
    assert store.locate(version, "old") == []
    engine.update_many(batch([1010, 1020], card="new"))  # takes the released slot
    assert [slot for _, slot in store.locate(version, "new")] == [0]
    store.close()

    again = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    old, new, recent = again.read("v", ["old", "new", "recent"], as_of_ms=1020)
    assert old.values == {"count_300ms": 0, "amount_sum_300ms": 0.0}
    assert new.values == {"count_300ms": 2, "amount_sum_300ms": 2030.0}
    assert recent.values == {"count_300ms": 1, "amount_sum_300ms": 1000.0}


@pytest.mark.redis
def test_redis_rings_expire_two_ring_spans_after_their_last_write(redis_url: str) -> None:
    import redis

    from loopline.features.redis import RedisStore

    slow = FeatureView(
        name="slow",
        entity=VIEW.entity,
        source=VIEW.source,
        aggregations=(Aggregation(function="count", windows=(3000,), hop=1000),),
    )  # a ring of three 1 s tiles: expires 6 to 6.75 s after its last write
    url = redis_url.rsplit("/", 1)[0] + "/5"
    client = redis.Redis.from_url(url)
    client.flushdb()
    engine = OnlineEngine(views=[slow], store=RedisStore(url))
    engine.update_many(batch([0, 50], card="a"))
    (name,) = client.keys("*:a")
    assert 6000 < client.pttl(name) <= 6750
    (a,) = engine.read("slow", ["a"], as_of_ms=50)
    assert a.values["count_3s"] == 2
    time.sleep(max(client.pttl(name), 0) / 1000 + 0.2)
    assert client.keys("*:a") == []
    (a,) = engine.read("slow", ["a"], as_of_ms=50)
    assert a.values["count_3s"] == 0


def test_a_changed_definition_is_a_new_version() -> None:
    changed = FeatureView(
        name="v",
        entity=VIEW.entity,
        source=VIEW.source,
        allowed_lateness_ms=250,
        aggregations=(Aggregation(function="count", windows=(600,), hop=100),),
    )
    assert changed.version != VIEW.version
    same = FeatureView(
        name="v",
        entity=VIEW.entity,
        source=VIEW.source,
        allowed_lateness_ms=250,
        aggregations=VIEW.aggregations,
    )
    assert same.version == VIEW.version


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"function": "avg", "windows": (1000,)}, "must be one of"),
        ({"function": "sum", "windows": (1000,)}, "needs a 'column'"),
        ({"function": "count", "windows": (-5,)}, "positive integer milliseconds"),
        ({"function": "count", "windows": (1050,), "hop": 100}, "not a multiple of its hop"),
    ],
)
def test_bad_definitions_say_what_and_how_to_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Aggregation(**kwargs)  # type: ignore[arg-type]


def test_history_from_parquet_files_declared_on_the_source(tmp_path: Path) -> None:
    from dataclasses import replace

    from loopline.features.history import write_history

    history = pa.table({"card": ["a"] * 6, "ts": TIMES, "amount": [float(x) for x in TIMES]})
    write_history(history, tmp_path / "history" / "part-0.parquet")
    view = replace(
        VIEW, source=replace(VIEW.source, history=str(tmp_path / "history" / "*.parquet"))
    )
    spine = pa.table({"card": ["a", "a"], "ts": [299, 400]})
    from_files = training_set(view, None, spine).to_pylist()
    assert from_files == training_set(VIEW, history, spine).to_pylist()
    assert [row["v__count_300ms"] for row in from_files] == [5, 3]


def test_no_history_at_all_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="has no history"):
        training_set(VIEW, None, pa.table({"card": ["a"], "ts": [1]}))


def test_a_ring_stores_no_uninitialised_memory_and_no_released_keys_values() -> None:
    """A slot's whole row is stored (Redis, snapshots), its empty positions included:
    they hold zeros, not whatever the allocator last held (another record's bytes) nor
    the values of the key that had the slot before."""
    from loopline.features.kernel import layouts
    from loopline.features.ring import make_ring

    (layout,) = layouts(VIEW).values()
    poison = np.full((2, 3, layout.width), 7.0)  # freed, then handed out again
    del poison
    ring = make_ring(layout, 3, capacity=2)
    assert not ring.values[0].any()
    ring.ensure(4)  # a second block: the first is neither copied nor moved
    assert len(ring.values) == 2
    assert not any(v.any() for v in ring.values)
    parts = layout.empty()[None, :] + 5.0
    ring.merge_runs(np.array([3]), np.array([0]), parts, [[]])
    assert ring.row(3)[1].any()
    ring.clear(np.array([3]))
    assert not any(v.any() for v in ring.values)
