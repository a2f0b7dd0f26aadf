"""The streaming scorer: every transaction on the topic decided once, invalid records in
the dead-letter topic, features equal to the offline engine's."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

from loopline.apps.fraud import data, fraud_feature_set
from loopline.apps.fraud.publish import publish
from loopline.apps.fraud.service import FraudService, stream_scorer
from loopline.apps.fraud.simulator import profile, simulate
from loopline.events import EmbeddedLog, Message, TopicPartition


@pytest.mark.parametrize("include_event", [False, True])
def test_stream_decides_every_transaction_with_offline_equal_features(
    service: FraudService, tmp_path, include_event: bool
) -> None:  # type: ignore[no-untyped-def]
    fs = replace(fraud_feature_set(), include_event=include_event)
    service.pipeline.tabular.feature_set = fs  # the served set, or one counting each event
    sim = simulate(profile("full", customers=150, terminals=300, days=6), seed=9)
    log = EmbeddedLog(tmp_path / "events.db")
    publish(log, sim.transactions, sim.labels.slice(0, 0), partitions=1)
    log.append_many("transactions", [Message(b'{"v": 1, "amount": "lots"}', key=b"x")])
    stream = stream_scorer(service, log, max_records=500)
    while stream.run_once():
        pass
    n = sim.transactions.num_rows
    assert stream.stats.events == n
    assert stream.stats.invalid == 1
    assert log.end_offset(TopicPartition("transactions.dlq", 0)) == 1
    with sqlite3.connect(service.log.path) as db:
        rows = db.execute("SELECT request_id, inputs FROM predictions").fetchall()
    assert len(rows) == n
    assert stream.run_once() == 0, "caught up: nothing is scored twice"

    # the offline engine over the same log order gives the same features
    records = log.read(TopicPartition("transactions", 0), 0, max_records=n + 1)
    order = {json.loads(r.value)["transaction_id"]: r.offset for r in records[:-1]}
    tx = sim.transactions
    history = data.histories(tx, sim.labels.slice(0, 0))
    positions = np.array([order[t] for t in tx["transaction_id"].to_pylist()])
    hist = history["transactions"].set_column(
        history["transactions"].schema.get_field_index("_offset"), "_offset", pa.array(positions)
    )
    offline = fs.offline({"transactions": hist, "labels": history["labels"]}, hist)
    by_id = dict(zip(offline["transaction_id"].to_pylist(), range(offline.num_rows), strict=True))
    online = {tid: json.loads(f) for tid, f in rows}
    mismatches = 0
    bad: dict[str, int] = {}
    for tid, values in online.items():
        i = by_id[tid]
        for name, got in values.items():
            v = np.nan if got is None else got  # NaN is stored as JSON null
            w = offline[name][i].as_py()
            w = np.nan if w is None else w
            if not (np.isclose(v, w, rtol=1e-9, atol=1e-6) or (np.isnan(v) and np.isnan(w))):
                mismatches += 1
                bad[name] = bad.get(name, 0) + 1
    assert mismatches == 0, bad
    log.close()


def test_a_late_transaction_is_decided_and_dead_lettered_not_aggregated(
    service: FraudService, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from loopline.apps.fraud.events import Transaction
    from loopline.events import Codec

    codec = Codec(Transaction)
    base = 1_700_000_000_000

    def tx(i: int, t: int) -> Message:
        event = Transaction(
            transaction_id=f"late-{i}", event_time_ms=t, card_token="tok_late",
            customer_id="c", terminal_id="t", merchant_category="grocery", amount=10.0,
            currency="EUR", channel="cp",
        )  # fmt: skip
        return Message(codec.encode(event), key=b"tok_late")

    log = EmbeddedLog(tmp_path / "events.db")
    log.create_topic("transactions", partitions=1)
    log.append_many("transactions", [tx(0, base), tx(1, base + 3_600_000)])
    log.append_many("transactions", [tx(2, base + 60_000)])  # an hour late: beyond 5 minutes
    stream = stream_scorer(service, log)
    while stream.run_once():
        pass
    with sqlite3.connect(service.log.path) as db:
        decided = {r[0] for r in db.execute("SELECT request_id FROM predictions")}
    assert decided == {"late-0", "late-1", "late-2"}, "every transaction gets a decision"
    assert stream.stats.late == 1
    letters = log.read(TopicPartition("transactions.dlq", 0), 0, max_records=10)
    assert len(letters) == 1
    letter = json.loads(letters[0].value)
    assert (letter["offset"], letter["error"]) == (2, "LateEventError")
    assert "watermark" in letter["reason"]
    log.close()
