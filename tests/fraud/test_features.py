"""The fraud feature set: terminal risk never uses a label before it arrived; online and
offline agree on simulated streams with late labels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loopline.apps.fraud import data, fraud_feature_set
from loopline.apps.fraud.simulator import DAY_MS, Simulation, profile, simulate
from loopline.features import EmbeddedStore, OnlineEngine
from loopline.features.redis import RedisStore
from loopline.features.validate import validate

T0 = 1_750_000_000_000


def _tx(tid: str, t: int, terminal: str = "term-1", card: str = "c1") -> dict[str, object]:
    return {
        "transaction_id": tid,
        "event_time_ms": t,
        "card_token": card,
        "customer_id": "cust-1",
        "terminal_id": terminal,
        "merchant_category": "grocery",
        "amount": 10.0,
        "currency": "EUR",
        "channel": "cp",
        "device_id": None,
        "latitude": 48.0,
        "longitude": 2.0,
        "is_fraud": 0,
        "scenario": "genuine",
    }


def test_terminal_risk_uses_only_labels_that_had_arrived(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # a fraud on term-1 at T0, charged back 7 days later; scored transactions at +3 d
    # (label not there yet) and +8 d (label arrived)
    tx = pa.Table.from_pylist(
        [_tx("a", T0), _tx("b", T0 + 3 * DAY_MS, card="c2"), _tx("c", T0 + 8 * DAY_MS, card="c3")]
    )
    labels = pa.table(
        {
            "transaction_id": ["a"],
            "label_time_ms": [T0 + 7 * DAY_MS],
            "event_time_ms": [T0],
            "card_token": ["c1"],
            "terminal_id": ["term-1"],
            "is_fraud": [1.0],
        }
    )
    fs = fraud_feature_set()
    offline = fs.offline(data.histories(tx, labels), data.histories(tx, labels)["transactions"])
    risk = offline["terminal_risk__is_fraud_mean_30d"].to_pylist()
    count = offline["terminal_risk__count_30d"].to_pylist()
    assert np.isnan(risk[:2]).all(), "no label had arrived by then"
    assert count[:2] == [0.0, 0.0]
    assert risk[2] == 1.0
    assert count[2] == 1.0

    engine = OnlineEngine(views=fs.views, store=EmbeddedStore(tmp_path / "online.db"))
    cols = data.columns(data.histories(tx, labels)["transactions"])
    label_cols = data.columns(labels)
    for i in range(3):
        one = {c: v[i : i + 1] for c, v in cols.items()}
        due = label_cols["label_time_ms"] <= cols["event_time_ms"][i]
        if due.any():
            engine.apply_many({c: v[due] for c, v in label_cols.items()}, topic="labels")
            label_cols = {c: v[~due] for c, v in label_cols.items()}
        online = fs.online(engine, one)
        assert (online["terminal_risk__count_30d"][0], i) == (count[i], i)
        engine.apply_many(one, topic="transactions")
    engine.store.close()


def test_features_describe_the_history_before_each_transaction() -> None:
    tx = pa.Table.from_pylist([_tx("a", T0), _tx("b", T0 + 60_000)])
    labels = pa.Table.from_pylist(
        [], schema=simulate(profile("full", customers=5, terminals=5, days=1)).labels.schema
    )
    out = fraud_feature_set().offline(
        data.histories(tx, labels), data.histories(tx, labels)["transactions"]
    )
    assert out["card__count_1h"].to_pylist() == [0.0, 1.0], "the transaction itself is not counted"
    assert out["card__time_since_last_30d"].to_pylist()[1] == 60_000.0
    assert out["km_from_last_place"].to_pylist()[1] == 0.0


def test_online_and_offline_agree_on_a_simulated_stream_with_late_labels() -> None:
    sim = simulate(profile("full", customers=300, terminals=600, days=40), seed=4)
    rates = validate(fraud_feature_set(), _streams(sim), sample=500, seed=4)
    assert len(rates) == len(fraud_feature_set().names) == 44
    assert rates == dict.fromkeys(rates, 0.0)


@pytest.mark.redis
def test_online_on_redis_agrees_with_offline(redis_url: str) -> None:
    """The serving read on the Redis store (every view of a request in one pipeline)
    gives the offline values, late labels included."""
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/5"
    redis.Redis.from_url(url).flushdb()
    sim = simulate(profile("full", customers=100, terminals=200, days=30), seed=5)
    rates = validate(fraud_feature_set(), _streams(sim), sample=200, seed=5, store=RedisStore(url))
    assert len(rates) == 44
    assert rates == dict.fromkeys(rates, 0.0)


def _streams(sim: Simulation) -> dict[str, dict[str, np.ndarray]]:
    """The simulation's transactions and labels as columns, each in arrival order."""
    streams = data.histories(sim.transactions, sim.labels)
    return {
        "transactions": data.columns(
            streams["transactions"].drop_columns(["_partition", "_offset"])
        ),
        "labels": data.columns(streams["labels"]),
    }
