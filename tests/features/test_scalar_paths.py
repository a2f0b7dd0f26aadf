"""The one-event paths (``compute_one``, ``FeatureSet.finish_one``, a one-key read) give
exactly what the array paths give on the same numbers and the same state."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.apps.fraud.events import Transaction, random_transactions
from loopline.apps.fraud.features import fraud_feature_set
from loopline.features import EmbeddedStore, OnlineEngine
from loopline.features.derived import Distance, Ratio, RequestFeature, Speed, ZScore
from loopline.features.worker import to_columns

numbers = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([0.0, -0.0, 1.0, math.nan]),
)
DERIVED = (
    Ratio(name="r", numerator="a", denominator="b"),
    ZScore(name="z", value="a", mean="b", std="c"),
    Distance(name="d", lat="a", lon="b", to_lat="c", to_lon="e"),
    Speed(name="s", distance="a", elapsed="b"),
    Speed(name="s0", distance="a", elapsed="b", min_elapsed_ms=0.0),
)
REQUEST = (
    RequestFeature(name="v", column="x"),
    RequestFeature(name="l", column="x", transform="log1p"),
    RequestFeature(name="h", column="t", transform="hour_of_day"),
    RequestFeature(name="w", column="t", transform="day_of_week"),
    RequestFeature(name="we", column="t", transform="is_weekend"),
    RequestFeature(name="eq", column="c", transform="equals", value="cnp"),
)


def same(a: float, b: float) -> bool:
    both_nan = math.isnan(a) and math.isnan(b)
    return both_nan or (a == b and math.copysign(1, a) == math.copysign(1, b))


@settings(max_examples=300, deadline=None)
@given(a=numbers, b=numbers, c=numbers, e=numbers)
def test_derived_compute_one_equals_compute(a: float, b: float, c: float, e: float) -> None:
    values = {"a": a, "b": b, "c": c, "e": e}
    columns = {k: np.array([v]) for k, v in values.items()}
    with np.errstate(all="ignore"):
        for d in DERIVED:
            assert same(d.compute_one(values), float(d.compute(columns)[0])), d


@settings(max_examples=300, deadline=None)
@given(
    x=st.floats(min_value=0, max_value=1e7),
    t=st.integers(min_value=0, max_value=4_000_000_000_000),
    c=st.sampled_from(["cnp", "cp", ""]),
)
def test_request_compute_one_equals_compute(x: float, t: int, c: str) -> None:
    columns = {"x": np.array([x]), "t": np.array([t], dtype=np.int64), "c": np.array([c])}
    one = {k: v[0] for k, v in columns.items()}
    for r in REQUEST:
        assert same(r.compute_one(one), float(r.compute(columns)[0])), r


def test_one_event_reads_and_finishes_as_a_batch_does(tmp_path: Path) -> None:
    fs = fraud_feature_set()
    engine = OnlineEngine(views=fs.views, store=EmbeddedStore(tmp_path / "f.db"))
    tx = random_transactions(340, cards=25, seed=3)
    fields = Transaction.__struct_fields__
    history, probe = to_columns(tx[:300], fields), to_columns(tx[300:], fields)
    for cols in (history, probe):
        cols["card_device"] = np.array(
            [
                f"{c}|{d}" if d else ""
                for c, d in zip(cols["card_token"], cols["device_id"], strict=True)
            ]
        )
    engine.apply_many(history, topic=fs.source.topic)
    batch = fs.online(engine, probe)  # 40 events: the array paths
    for i in range(40):
        one = fs.online(engine, {c: v[i : i + 1] for c, v in probe.items()})
        assert list(one) == list(batch)
        for name, column in one.items():
            assert column.shape == batch[name][i : i + 1].shape, name
            np.testing.assert_array_equal(column, batch[name][i : i + 1], err_msg=name)
