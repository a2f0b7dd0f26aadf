"""Vector features (``dim``) and list features (``last_n``): declaration, both stores,
snapshot and restart, lateness, ties, and the offline engine's columns."""

from __future__ import annotations

import math
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
    FeatureSet,
    FeatureView,
    OnlineEngine,
    OnlineStore,
    Source,
    days,
    hours,
    training_set,
)

NAN = math.nan
VIEW = FeatureView(
    name="user",
    entity=Entity(name="user", join_key="user"),
    source=Source(name="ratings", topic="ratings", timestamp="ts"),
    allowed_lateness_ms=250,
    aggregations=(
        Aggregation(function="sum", column="genres", windows=(1000,), hop=100, dim=3),
        Aggregation(function="mean", column="genres", windows=(300,), hop=100, dim=3),
        Aggregation(function="last_n", column="item", windows=(300, 1000), hop=100, n=3),
    ),
)


def events(
    times: list[int], items: list[float], genres: list[list[float]] | None = None
) -> dict[str, np.ndarray]:
    genres = genres or [[1.0, 0.0, 0.0]] * len(times)
    return {
        "user": np.array(["u"] * len(times)),
        "ts": np.array(times, dtype=np.int64),
        "genres": np.array(genres, dtype=np.float64).reshape(len(times), 3),
        "item": np.array(items, dtype=np.float64),
    }


def history(cols: dict[str, np.ndarray]) -> pa.Table:
    n = len(cols["ts"])
    genres = [None if np.isnan(g).any() else g.tolist() for g in cols["genres"]]
    items = [None if math.isnan(x) else int(x) for x in cols["item"].tolist()]
    return pa.table(
        {
            "user": cols["user"],
            "ts": cols["ts"],
            "genres": pa.array(genres, pa.list_(pa.float64(), 3)),
            "item": pa.array(items, pa.int64()),
            "_partition": [0] * n,
            "_offset": list(range(n)),
            "_arrival_ms": cols["ts"],
        }
    )


def same(a: object, b: object) -> bool:
    return bool(np.array_equal(np.asarray(a, float), np.asarray(b, float), equal_nan=True))


# --- declaration -------------------------------------------------------------------------


def test_names_and_widths() -> None:
    genres = Aggregation(function="sum", column="genres", windows=(days(30),), dim=19)
    items = Aggregation(function="last_n", column="item_id", windows=(hours(1),), n=10)
    assert genres.feature_name(days(30)) == "genres_sum_30d"
    assert items.feature_name(hours(1)) == "item_id_last10_1h"
    assert VIEW.places == {
        "genres_sum_1s": (0, 3),
        "genres_mean_300ms": (3, 3),
        "item_last3_300ms": (6, 3),
        "item_last3_1s": (9, 3),
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"function": "max", "column": "genres", "dim": 19},
            "cannot take the vector column 'genres'",
        ),
        ({"function": "sum", "column": "genres", "dim": 0}, "'dim' of Aggregation 'sum'"),
        ({"function": "last_n", "column": "item"}, "needs 'n'"),
        ({"function": "count", "n": 3}, "takes no 'n'"),
        ({"function": "last_n", "column": "item", "n": -1}, "'n' of Aggregation 'last_n'"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Aggregation(windows=(1000,), **options)  # type: ignore[arg-type]


def test_the_version_changes_with_dim_and_n_and_not_otherwise() -> None:
    def view(*aggs: Aggregation) -> FeatureView:
        return FeatureView(name="v", entity=VIEW.entity, source=VIEW.source, aggregations=aggs)

    count = Aggregation(function="count", windows=(1000,))
    base = view(count)
    assert "dim" not in repr(count)
    assert base.version == view(count).version
    vec = [Aggregation(function="sum", column="g", windows=(1000,), dim=d) for d in (3, 4)]
    lists = [Aggregation(function="last_n", column="i", windows=(1000,), n=k) for k in (3, 4)]
    versions = {view(count, a).version for a in (*vec, *lists)}
    assert len(versions) == 4
    assert base.version not in versions


# --- online: values, lateness, ties ---------------------------------------------------------


def test_vector_sums_and_means_lane_by_lane(tmp_path: Path) -> None:
    engine = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    genres = [[1, 0, 1], [0, 1, 0], [NAN, 5, 5], [2, 2, 2]]  # a vector with a NaN is none
    engine.update_many(events([10, 150, 400, 410], [1, 2, 3, 4], genres))
    (row,) = engine.read("user", ["u"], as_of_ms=450)
    assert same(row.values["genres_sum_1s"], [3, 3, 3])
    assert same(row.values["genres_mean_300ms"], [2, 2, 2])  # tiles 2..4: 400 and 410
    (empty,) = engine.read("user", ["nobody"], as_of_ms=450)
    assert same(empty.values["genres_sum_1s"], [0, 0, 0])
    assert same(empty.values["genres_mean_300ms"], [NAN] * 3)
    many = engine.read_many("user", ["u", "nobody", "u", "u"], np.full(4, 450))
    assert many["genres_sum_1s"].shape == (4, 3)
    assert same(many["genres_sum_1s"][2], [3, 3, 3])
    assert same(many["item_last3_1s"][3], [4, 3, 2])


def test_wrong_vector_shape_is_refused(tmp_path: Path) -> None:
    engine = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    cols = events([10], [1]) | {"genres": np.array([[1.0, 2.0]])}
    with pytest.raises(ConfigError, match=r"vectors of 3 floats.*\(1, 2\)"):
        engine.update_many(cols)


def test_last_n_is_newest_first_padded_and_windowed(tmp_path: Path) -> None:
    engine = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    engine.update_many(events([100, 200, 700, 710], [1, NAN, 3, 4]))  # no item: not listed
    (row,) = engine.read("user", ["u"], as_of_ms=750)
    assert same(row.values["item_last3_1s"], [4, 3, 1])
    assert same(row.values["item_last3_300ms"], [4, 3, NAN])  # tiles 5..7
    assert row.freshness_ms == 710


def test_late_events_land_in_order_and_too_late_ones_are_dropped(tmp_path: Path) -> None:
    engine = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    engine.update_many(events([500, 600], [5, 6]))
    late = engine.update_many(events([550, 300], [55, 30]))[f"user@{VIEW.version}"]
    assert late.tolist() == [False, True]  # 300 < 600 - 250
    (row,) = engine.read("user", ["u"], as_of_ms=650)
    assert same(row.values["item_last3_1s"], [6, 55, 5])


def test_equal_times_go_to_the_later_log_position(tmp_path: Path) -> None:
    engine = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    tp = TopicPartition("ratings", 0)
    cols = events([100, 100, 100], [7, 8, 9])
    engine.apply_many(cols, positions=("ratings", np.array([10, 11, 12])))
    engine.commit(0, offsets={tp: 13})
    (row,) = engine.read("user", ["u"], as_of_ms=100)
    assert same(row.values["item_last3_1s"], [9, 8, 7])
    (offline,) = training_set(
        VIEW, history(cols), pa.table({"user": ["u"], "ts": [100]})
    ).to_pylist()
    assert same(offline["user__item_last3_1s"], [9, 8, 7])


# --- stores: snapshot and restart, Redis -------------------------------------------------------

STREAM = events(
    [10, 120, 130, 260, 400, 390, 700, 710, 720, 950],
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    [[i, 2 * i, -i] for i in range(10)],
)


def apply_in_batches(engine: OnlineEngine, cols: dict[str, np.ndarray], cuts: list[int]) -> None:
    tp = TopicPartition("ratings", 0)
    for lo, hi in zip([0, *cuts], [*cuts, len(cols["ts"])], strict=True):
        batch = {c: v[lo:hi] for c, v in cols.items()}
        engine.apply_many(batch, positions=("ratings", np.arange(lo, hi)))
        engine.commit(0, offsets={tp: hi})


def test_snapshot_and_restart_replay_are_exact(tmp_path: Path) -> None:
    whole = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "whole.db"))
    apply_in_batches(whole, STREAM, [3, 6])
    (want,) = whole.read("user", ["u"], as_of_ms=999)

    store = EmbeddedStore(tmp_path / "crash.db", snapshot_interval_s=3600)
    first = OnlineEngine(views=[VIEW], store=store)
    apply_in_batches(first, {c: v[:6] for c, v in STREAM.items()}, [3])
    store.snapshot()  # the last snapshot: six events
    first.apply_many({c: v[6:8] for c, v in STREAM.items()}, positions=("ratings", np.arange(6, 8)))
    # crash: the two events applied after the snapshot are lost with the process
    again = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "crash.db"))
    resume = again.offset(TopicPartition("ratings", 0))
    assert resume == 6
    tp = TopicPartition("ratings", 0)
    again.apply_many(
        {c: v[resume:] for c, v in STREAM.items()}, positions=("ratings", np.arange(resume, 10))
    )
    again.commit(0, offsets={tp: 10})
    (got,) = again.read("user", ["u"], as_of_ms=999)
    for name, value in want.values.items():
        assert same(got.values[name], value), name
    assert same(got.values["item_last3_1s"], [10, 9, 8])


def test_counted_positions_survive_a_restart(tmp_path: Path) -> None:
    # without offsets, events are numbered in arrival order; the count is checkpointed
    engine = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    engine.update_many(events([100], [1]))
    engine.store.close()
    again = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    again.update_many(events([100], [2]))
    (row,) = again.read("user", ["u"], as_of_ms=100)
    assert same(row.values["item_last3_1s"], [2, 1, NAN])


def check_store(store: OnlineStore) -> None:
    """Three batches in, then each read path against the offline engine at t = 999."""
    engine = OnlineEngine(views=[VIEW], store=store)
    apply_in_batches(engine, STREAM, [4, 7])
    spine = pa.table({"user": ["u", "x"], "ts": [999, 999]})
    offline = training_set(VIEW, history(STREAM), spine).to_pylist()
    (online,) = engine.read("user", ["u"], as_of_ms=999)
    many = engine.read_many("user", ["u", "x", "u", "u"], np.full(4, 999))
    for name, value in online.values.items():
        want = np.asarray(offline[0][f"user__{name}"], float)
        assert np.allclose(np.asarray(value, float), want, equal_nan=True), name
        assert np.allclose(many[name][0], want, equal_nan=True), name
        assert same(many[name][1], offline[1][f"user__{name}"]), name
    engine.store.close()


def test_embedded_store_agrees_with_offline(tmp_path: Path) -> None:
    check_store(EmbeddedStore(tmp_path / "s.db"))


@pytest.mark.redis
def test_redis_store_agrees_with_offline_and_survives_a_new_engine(redis_url: str) -> None:
    import redis

    from loopline.features.redis import RedisStore

    url = redis_url.rsplit("/", 1)[0] + "/5"
    redis.Redis.from_url(url).flushdb()
    check_store(RedisStore(url))
    again = OnlineEngine(views=[VIEW], store=RedisStore(url))  # the state is in the server
    (row,) = again.read("user", ["u"], as_of_ms=999)
    assert same(row.values["item_last3_1s"], [10, 9, 8])
    assert same(row.values["genres_sum_1s"], np.sum(STREAM["genres"], axis=0))
    again.store.close()


# --- offline tables and feature sets -----------------------------------------------------------


def test_offline_columns_are_fixed_size_lists(tmp_path: Path) -> None:
    table = training_set(VIEW, history(STREAM), pa.table({"user": ["u"], "ts": [999]}))
    assert table.schema.field("user__genres_sum_1s").type == pa.list_(pa.float64(), 3)
    assert table.schema.field("user__item_last3_1s").type == pa.list_(pa.float64(), 3)


def test_offline_refuses_a_text_list_column() -> None:
    hist = history(STREAM).set_column(3, "item", pa.array(["a"] * 10))
    with pytest.raises(ConfigError, match="'item' of Aggregation 'last_n' must hold numbers"):
        training_set(VIEW, hist, pa.table({"user": ["u"], "ts": [999]}))


def test_feature_set_online_and_offline_agree_with_the_event_itself(tmp_path: Path) -> None:
    fs = FeatureSet(name="rec", views=(VIEW,))
    engine = OnlineEngine(views=[VIEW], store=EmbeddedStore(tmp_path / "s.db"))
    apply_in_batches(engine, {c: v[:9] for c, v in STREAM.items()}, [4])
    last = {c: v[9:] for c, v in STREAM.items()}
    online = fs.online(engine, last | {"ts": np.array([720])})  # ties the newest listed
    spine = history(STREAM).slice(9).set_column(1, "ts", pa.array([720]))
    spine = spine.set_column(6, "_arrival_ms", pa.array([720]))
    hist = pa.concat_tables([history(STREAM).slice(0, 9), spine])
    offline = fs.offline(hist, spine)
    assert offline.schema.field("user__genres_mean_300ms").type == pa.list_(pa.float64(), 3)
    for name, values in online.items():
        got = np.asarray(offline.column(name).to_pylist(), float)
        assert np.allclose(values, got, equal_nan=True), name
    assert same(online["user__item_last3_1s"][0], [10, 9, 8])  # the scored event first


def test_list_fields_of_events_become_vector_columns() -> None:
    import msgspec

    from loopline.features.worker import to_columns

    class Rating(msgspec.Struct):
        user: str
        genres: list[float] | None

    cols = to_columns([Rating("u", [1.0, 0.0, 1.0]), Rating("u", None)], ["genres", "user"])
    assert cols["genres"].shape == (2, 3)
    assert same(cols["genres"], [[1, 0, 1], [NAN, NAN, NAN]])


def test_a_view_of_lists_only(tmp_path: Path) -> None:
    view = FeatureView(
        name="session",
        entity=VIEW.entity,
        source=VIEW.source,
        aggregations=(Aggregation(function="last_n", column="item", windows=(hours(1),), n=2),),
    )
    engine = OnlineEngine(views=[view], store=EmbeddedStore(tmp_path / "s.db"))
    engine.update_many(events([1000, 2000, 3000], [1, 2, 3]))
    (row,) = engine.read("session", ["u"], as_of_ms=3000)
    assert same(row.values["item_last2_1h"], [3, 2])
    assert row.freshness_ms == 3000
    many = engine.read_many("session", ["u", "v", "u", "u"], np.full(4, 3000))
    assert same(many["item_last2_1h"], [[3, 2], [NAN, NAN], [3, 2], [3, 2]])
