"""The Redis store's layout (format 3): a hash per ring, a record per tile position.

A batch writes the positions it changed and nothing else; a ring holds at most its ``R``
positions; rings read back equal the embedded store's; format-2 strings are read and
rewritten as hashes."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest

from loopline.features import Aggregation, EmbeddedStore, Entity, FeatureView, OnlineEngine, Source
from loopline.features.kernel import Layout, layouts
from loopline.features.reads import FeatureValues
from loopline.features.ring import NO_TILE

pytestmark = pytest.mark.redis

VIEW = FeatureView(
    name="v",
    entity=Entity(name="card", join_key="card"),
    source=Source(name="tx", topic="tx", timestamp="ts"),
    aggregations=(
        Aggregation(function="count", windows=(300,), hop=100),
        Aggregation(function="sum", column="amount", windows=(300,), hop=100),
        Aggregation(function="distinct_count", column="merchant", windows=(300,), hop=100),
        Aggregation(function="max", column="amount", windows=(2000,), hop=1000),
    ),
)
(LAYOUT, SLOW) = layouts(VIEW).values()


def batch(ts: list[int], card: str = "a", merchant: str = "m1") -> dict[str, np.ndarray]:
    return {
        "card": np.array([card] * len(ts)),
        "ts": np.array(ts),
        "amount": np.arange(1, len(ts) + 1, dtype=float),
        "merchant": np.array([merchant] * len(ts)),
    }


@pytest.fixture
def url(redis_url: str) -> str:
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/9"
    redis.Redis.from_url(url).flushdb()
    return url


def stored(url: str, key: str, hop: int) -> dict[int, bytes]:
    """A ring's hash: position -> record (-1: the metadata)."""
    import redis

    from loopline.features.redis_layout import state_key

    raw = redis.Redis.from_url(url).hgetall(state_key(VIEW.version, hop, 0) + key.encode())
    return {int.from_bytes(f, "little", signed=True): v for f, v in raw.items()}


def tiles(url: str, key: str, layout: Layout) -> dict[int, tuple[int, list[float], set[int]]]:
    """A ring's tiles as stored: position -> (tile id, partials, codes)."""
    from loopline.features.redis_layout import decode_one

    out = {}
    for pos, raw in stored(url, key, layout.hop_ms).items():
        if pos >= 0:
            r = decode_one(raw, layout.width)
            out[pos] = (int(r.tile[0]), r.data[0].tolist(), set(r.codes.tolist()))
    return out


def embedded_tiles(store: EmbeddedStore, key: str, layout: Layout) -> dict[int, tuple]:  # type: ignore[type-arg]
    ((_, slot),) = store.locate(VIEW.version, key)
    ring = store.ring(VIEW.version, layout, 0)
    assert ring is not None
    ids, data = ring.row(slot)
    positions, _, codes = ring.codes.of_slot(slot)
    return {
        p: (int(ids[p]), data[p].tolist(), set(codes[positions == p].tolist()))
        for p in np.flatnonzero(ids != NO_TILE).tolist()
    }


def same(got: list[FeatureValues], want: list[FeatureValues]) -> None:
    """Equal feature values, NaN equal to NaN."""
    np.testing.assert_equal([r.values for r in got], [r.values for r in want])


def test_a_batch_writes_only_the_tiles_it_changed(url: str) -> None:
    from loopline.features.redis import RedisStore

    engine = OnlineEngine(views=[VIEW], store=RedisStore(url))
    engine.update_many(batch([0, 110, 220]))  # tiles 0, 1, 2 of the 100 ms hop
    before = stored(url, "a", 100)
    assert sorted(before) == [-1, 0, 1, 2]
    engine.update_many(batch([250], merchant="m2"))  # tile 2 only
    after = stored(url, "a", 100)
    changed = sorted(p for p in after if after[p] != before.get(p) and p >= 0)
    assert changed == [2]  # not the other tiles
    tile, _, codes = tiles(url, "a", LAYOUT)[2]
    assert (tile, len(codes)) == (2, 2)
    engine.store.close()


def test_a_ring_holds_at_most_its_positions_and_a_newer_tile_replaces_the_older(
    url: str,
) -> None:
    from loopline.features.redis import RedisStore

    engine = OnlineEngine(views=[VIEW], store=RedisStore(url))
    engine.update_many(batch([0, 110, 220]))
    engine.update_many(batch([330, 450, 1150], merchant="m2"))  # tiles 3, 4, 11 of a 3-ring
    held = tiles(url, "a", LAYOUT)
    assert sorted(held) == [0, 1, 2]
    assert sorted(t for t, _, _ in held.values()) == [3, 4, 11]  # 0, 1, 2 are gone
    (a,) = engine.read("v", ["a"], as_of_ms=1150)
    assert a.values["count_300ms"] == 1
    assert a.values["merchant_distinct_count_300ms"] == 1
    engine.store.close()


def test_a_ring_expiry_is_renewed_only_when_less_than_two_spans_are_left(url: str) -> None:
    import redis

    from loopline.features.redis import RedisStore
    from loopline.features.redis_layout import META, state_key

    client = redis.Redis.from_url(url)
    engine = OnlineEngine(views=[VIEW], store=RedisStore(url))
    engine.update_many(batch([0]))
    name = state_key(VIEW.version, 100, 0) + b"a"  # a span of 300 ms: expiry 600-675 ms
    assert 600 < client.pttl(name) <= 675
    client.pexpire(name, 100_000)  # as if the ring's expiry held far ahead
    engine.update_many(batch([10]))
    assert client.pttl(name) > 99_000  # not renewed: more than two spans left
    meta = bytearray(client.hget(name, META) or b"")
    meta[24:32] = (0).to_bytes(8, "little")  # its deadline passed
    client.hset(name, META, bytes(meta))
    engine.update_many(batch([20]))
    assert 600 < client.pttl(name) <= 675
    engine.store.close()


def test_rings_read_back_equal_the_embedded_stores(url: str, tmp_path: Path) -> None:
    from loopline.features.redis import RedisStore

    rng = np.random.default_rng(3)
    embedded = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    remote = OnlineEngine(views=[VIEW], store=RedisStore(url))
    ts = 0
    for _ in range(6):
        n = 40
        ts += int(rng.integers(0, 400))
        cols = {
            "card": rng.choice(["a", "b", "c", "d"], n),
            "ts": ts + np.sort(rng.integers(-150, 150, n)),  # late ones too
            "amount": rng.integers(1, 100, n).astype(float),
            "merchant": rng.choice(["m1", "m2", "m3", "m4", "m5"], n),
        }
        embedded.update_many(cols)
        remote.update_many(cols)
        for key in ("a", "b", "c", "d"):
            for layout in (LAYOUT, SLOW):
                assert tiles(url, key, layout) == embedded_tiles(embedded.store, key, layout)  # type: ignore[arg-type]
        at = int(cols["ts"].max())
        for keys in (["a", "b", "c", "d", "e"], ["a"], ["e"]):  # many keys, and one
            same(remote.read("v", keys, as_of_ms=at), embedded.read("v", keys, as_of_ms=at))
    embedded.store.close()
    remote.store.close()


def v2_string(ring_ids: np.ndarray, data: np.ndarray, codes: np.ndarray) -> bytes:
    """A ring as format 2 stored it (the store's ``_encode`` of then): one msgpack
    tuple of tile ids, partials, (3, n) distinct codes and the format number."""
    return msgspec.msgpack.encode((ring_ids.tobytes(), data.tobytes(), codes.tobytes(), 2))


def test_a_format_2_state_is_read_and_rewritten_as_format_3(url: str, tmp_path: Path) -> None:
    import redis

    from loopline.features.redis import RedisStore
    from loopline.features.redis_layout import v2_key

    client = redis.Redis.from_url(url)
    embedded = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    first = batch([0, 110, 220, 230], merchant="m1") | {"merchant": np.array(["m1", "m2"] * 2)}
    embedded.update_many(first)
    store = embedded.store
    assert isinstance(store, EmbeddedStore)
    for layout in (LAYOUT, SLOW):  # each ring of card a as format 2 wrote it
        ((_, slot),) = store.locate(VIEW.version, "a")
        ring = store.ring(VIEW.version, layout, 0)
        assert ring is not None
        ids, data = ring.row(slot)
        codes = np.stack(ring.codes.of_slot(slot)) if layout.distinct else np.empty((3, 0))
        raw = v2_string(ids, data, codes.astype(np.int64))
        client.set(v2_key(VIEW.version, layout.hop_ms, 0, "a"), raw)
    client.sadd(f"ll:f:partitions:{VIEW.version}", 0)
    remote = OnlineEngine(views=[VIEW], store=RedisStore(url))
    for probe in (230, 260):
        for keys in (["a"], ["a", "z"]):
            same(remote.read("v", keys, as_of_ms=probe), embedded.read("v", keys, as_of_ms=probe))
    update = batch([260], merchant="m3")
    embedded.update_many(update)
    remote.update_many(update)
    assert client.keys("ll:f:{p0}:*:a") == []  # the strings went with the rewrite
    for layout in (LAYOUT, SLOW):
        assert tiles(url, "a", layout) == embedded_tiles(store, "a", layout)  # every tile
    got = remote.read("v", ["a"], as_of_ms=260)
    same(got, embedded.read("v", ["a"], as_of_ms=260))
    assert got[0].values["merchant_distinct_count_300ms"] == 3
    embedded.store.close()
    remote.store.close()


def test_erasure_removes_both_formats(url: str) -> None:
    import redis

    from loopline.features.redis import RedisStore
    from loopline.features.redis_layout import v2_key

    client = redis.Redis.from_url(url)
    store = RedisStore(url)
    OnlineEngine(views=[VIEW], store=store).update_many(batch([0]))
    client.set(v2_key(VIEW.version, 100, 0, "a-old"), b"x")
    assert store.erase(lambda key: key.startswith("a")) == 3  # two hashes, one string
    assert [k for k in client.keys("*") if k.endswith((b":a", b":a-old"))] == []
    store.close()
