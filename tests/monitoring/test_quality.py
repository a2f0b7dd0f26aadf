"""Data quality at ingestion: a record that breaks its topic's expectations goes to the
dead-letter topic with a reason naming the field, the value and the fix; the rest of its
batch goes on; batch-level null rates and cardinality are reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from loopline.apps.fraud.events import TRANSACTION_QUALITY, Transaction
from loopline.events import Codec, EmbeddedLog, Message, TopicPartition
from loopline.features import EmbeddedStore, OnlineEngine
from loopline.features.worker import FeatureWorker
from loopline.monitoring.quality import Expectations
from loopline.monitoring.workers import WorkerCollector

RULES = Expectations(
    required=("id",),
    ranges={"amount": (0.01, 100.0)},
    allowed={"channel": frozenset({"cp", "cnp"})},
    max_null_rate={"device": 0.25},
    max_cardinality={"currency": 2},
    where="RULES",
)


def test_each_broken_expectation_names_the_field_the_value_and_the_fix() -> None:
    columns = {
        "id": np.array(["a", "", "c", "d", "e"]),
        "amount": np.array([5.0, 5.0, -3.0, np.nan, 7.0]),
        "channel": np.array(["cp", "cnp", "cp", "atm", ""]),
        "device": np.array(["x", "", "", "y", "z"]),
        "currency": np.array(["EUR", "EUR", "USD", "GBP", "EUR"]),
    }
    reasons, batch = RULES.check(columns)
    assert reasons[0] is None
    assert reasons[1] == ("id", "id is required and is missing (''): send it.")
    assert reasons[2] == (
        "amount",
        "amount=-3.0 is outside [0.01, 100.0]: correct the producer, or widen the range in RULES.",
    )
    assert reasons[3] is not None
    assert reasons[3][0] == "channel"
    assert "channel='atm' is not one of ['cnp', 'cp']" in reasons[3][1], "NaN is not a range error"
    assert reasons[4] is None, "an empty optional category is missing, not unknown"
    assert batch.null_rates == {"device": 0.4}
    assert batch.cardinality == {"currency": 3}
    assert batch.breaches == [
        "device is missing in 40.0% of the batch (limit 25.0%)",
        "currency takes 3 distinct values in a batch (limit 2)",
    ]


def test_a_worker_dead_letters_bad_transactions_and_applies_the_rest(tmp_path: Path) -> None:
    from loopline.apps.fraud.features import fraud_views

    codec = Codec(Transaction)

    def tx(i: int, **over: object) -> Message:
        fields: dict[str, object] = {
            "transaction_id": f"q-{i}", "event_time_ms": 1_700_000_000_000 + i,
            "card_token": f"tok_{i}", "customer_id": "c", "terminal_id": "t",
            "merchant_category": "grocery", "amount": 10.0, "currency": "EUR", "channel": "cp",
        }  # fmt: skip
        fields.update(over)
        return Message(codec.encode(Transaction(**fields)))  # type: ignore[arg-type]

    log = EmbeddedLog(tmp_path / "events.db")
    log.create_topic("transactions", partitions=1)
    log.append_many(
        "transactions",
        [tx(0), tx(1, amount=-5.0), tx(2, channel="atm"), tx(3, latitude=123.0), tx(4)],
    )
    views = [v for v in fraud_views() if v.source.topic == "transactions"]
    engine = OnlineEngine(views=views, store=EmbeddedStore(tmp_path / "online.db"))
    worker = FeatureWorker(
        engine=engine, log=log, topic="transactions", schema=Transaction,
        quality=TRANSACTION_QUALITY,
    )  # fmt: skip
    worker.run_once()
    assert worker.stats.events == 2
    assert worker.stats.violations == {"amount": 1, "channel": 1, "latitude": 1}
    letters = [
        json.loads(r.value)
        for r in log.read(TopicPartition("transactions.dlq", 0), 0, max_records=10)
    ]
    assert [(x["offset"], x["error"]) for x in letters] == [
        (1, "DataQualityError"),
        (2, "DataQualityError"),
        (3, "DataQualityError"),
    ]
    assert "amount=-5.0 is outside [0.01, 1000000.0]" in letters[0]["reason"]
    assert "TRANSACTION_QUALITY" in letters[0]["reason"]
    assert engine.offset(TopicPartition("transactions", 0)) == 5, "the batch moved on"
    samples = {
        (m.name, tuple(sorted(s.labels.items()))): s.value
        for m in WorkerCollector(worker).collect()
        for s in m.samples
    }
    key = ("topic", "transactions")
    assert samples[("loopline_quality_violations", (("field", "amount"), key))] == 1
    assert samples[("loopline_dead_letters", (("reason", "quality"), key))] == 3
    assert samples[("loopline_null_rate", (("field", "device_id"), key))] == 1.0
    assert samples[("loopline_quality_breaches", (key,))] == 2  # device_id, latitude missing
    log.close()
