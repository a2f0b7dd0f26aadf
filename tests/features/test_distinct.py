"""Distinct counts as value codes: the code table's rules, and stores of the format
before it (distinct values kept as sets) read back after migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import numpy as np
import pytest

from loopline.features import Aggregation, EmbeddedStore, Entity, FeatureView, OnlineEngine, Source
from loopline.features.distinct import CodeTable, value_code, value_codes

VIEW = FeatureView(
    name="v",
    entity=Entity(name="card", join_key="card"),
    source=Source(name="tx", topic="tx", timestamp="ts"),
    aggregations=(
        Aggregation(function="distinct_count", column="merchant", windows=(300,), hop=100),
    ),
)
EVENTS = {  # card a: tile 0 {m1, m2}, tile 1 {m1}; card b: tile 1 {m3}
    "card": np.array(["a", "a", "a", "b"]),
    "ts": np.array([0, 50, 150, 160]),
    "merchant": np.array(["m1", "m2", "m1", "m3"]),
}
V1_SETS = [(0, 0, [["m1", "m2"]]), (0, 1, [["m1"]]), (1, 1, [["m3"]])]  # (slot, position, ...)


def test_codes_compare_values_as_a_set_does() -> None:
    assert value_code(1) == value_code(1.0) == value_code(np.int64(1)) == value_code(True)
    assert value_code(0.0) == value_code(-0.0)
    assert value_code("1") != value_code(1)
    assert value_code("m1") == -168216301508449911  # stored: must never change
    codes = value_codes(np.array(["x", "y", "x"]))
    assert codes[0] == codes[2] == value_code("x")
    assert codes[1] == value_code("y")


@pytest.mark.parametrize("block", [None, 1])  # one part, or one part per slot
def test_a_fresh_tile_replaces_the_codes_of_the_one_it_evicts(block: int | None) -> None:
    table = CodeTable(ring=3, block=block)
    table.merge(np.array([0, 0, 4]), np.array([0, 0, 0]), np.array([7, 8, 9]), np.array([0, 4]))
    assert table.union(0, [0], 1) == [{7, 8}]
    assert table.union(1, [1], 1) == [{9}]
    table.merge(np.array([0]), np.array([0]), np.array([7]), np.array([]))  # merged: no change
    assert len(table) == 3
    table.merge(np.array([0]), np.array([0]), np.array([5]), np.array([0]))  # a newer tile
    assert table.union(0, [0, 1, 2], 1) == [{5}]
    assert (
        CodeTable.from_arrays(3, table.arrays(), block).arrays().tolist() == table.arrays().tolist()
    )
    table.drop_slots(np.array([1]))
    assert table.union(1, [0, 1, 2], 1) == [set()]
    assert len(table) == 1


def test_runs_of_one_batch_at_one_position_keep_the_newest_tile(tmp_path: Path) -> None:
    engine = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    # a ring of 3 tiles: tiles 0 and 3 share position 0, and tile 3 evicts tile 0
    batch = {"card": np.array(["a"] * 3), "ts": np.array([0, 10, 310]),
             "merchant": np.array(["m1", "m2", "m3"])}  # fmt: skip
    engine.update_many(batch)
    (row,) = engine.read("v", ["a"], as_of_ms=310)
    assert row.values["merchant_distinct_count_300ms"] == 1  # tile 0 left the ring
    engine.store.close()


def test_an_embedded_file_of_the_set_format_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    engine = OnlineEngine(views=[VIEW], store=EmbeddedStore(path))
    engine.update_many(EVENTS)
    want = engine.read("v", ["a", "b"], as_of_ms=200)
    engine.store.close()
    with sqlite3.connect(path) as conn:  # the same state as format 1 wrote it
        conn.execute("UPDATE rings SET sets = ?", (msgspec.msgpack.encode(V1_SETS),))
        conn.execute("PRAGMA user_version = 1")
    again = OnlineEngine(views=[VIEW], store=EmbeddedStore(path))
    got = again.read("v", ["a", "b"], as_of_ms=200)
    assert [r.values for r in got] == [r.values for r in want]
    assert [r.values["merchant_distinct_count_300ms"] for r in got] == [2, 1]
    again.store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)


@pytest.mark.redis
def test_a_redis_state_of_the_set_format_is_read_and_rewritten(
    redis_url: str, tmp_path: Path
) -> None:
    import redis

    from loopline.features.kernel import layouts
    from loopline.features.redis import RedisStore
    from loopline.features.redis_layout import v2_key

    url = redis_url.rsplit("/", 1)[0] + "/7"
    client = redis.Redis.from_url(url)
    client.flushdb()
    (layout,) = layouts(VIEW).values()
    embedded = EmbeddedStore(tmp_path / "s.db")
    OnlineEngine(views=[VIEW], store=embedded).update_many({k: v[:3] for k, v in EVENTS.items()})
    ((_, slot),) = embedded.locate(VIEW.version, "a")
    ring = embedded.ring(VIEW.version, layout, 0)
    assert ring is not None
    ids, data = ring.row(slot)
    old = v2_key(VIEW.version, 100, 0, "a")  # card a as format 1 wrote it: values as sets
    client.set(
        old,
        msgspec.msgpack.encode((ids.tobytes(), data.tobytes(), {0: [["m1", "m2"]], 1: [["m1"]]})),
    )
    client.sadd(f"ll:f:partitions:{VIEW.version}", 0)  # which partitions hold the view
    embedded.close()
    engine = OnlineEngine(views=[VIEW], store=RedisStore(url))
    (a,) = engine.read("v", ["a"], as_of_ms=200)
    assert a.values["merchant_distinct_count_300ms"] == 2
    engine.update_many({k: v[:1] for k, v in EVENTS.items()} | {"ts": np.array([170])})
    # looked at at once: this view's ring expires ~0.7 s of wall time after its write
    written = [client.type(n) for n in client.keys("*:a")]
    assert client.exists(old) == 0  # rewritten as format 3, in the same script
    assert written == [b"hash"]
    (a,) = engine.read("v", ["a"], as_of_ms=200)
    assert a.values["merchant_distinct_count_300ms"] == 2  # m1 again: still two
    engine.store.close()
