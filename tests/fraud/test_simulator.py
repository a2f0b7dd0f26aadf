"""The transaction simulator: deterministic, faithful to its profiles, labels late."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from loopline.apps.fraud import data
from loopline.apps.fraud.events import Label, Transaction
from loopline.apps.fraud.publish import publish
from loopline.apps.fraud.simulator import DAY_MS, SCENARIOS, START_MS, profile, simulate
from loopline.events import Codec, EmbeddedLog, TopicPartition
from loopline.exceptions import ConfigError

SMALL = profile("full", customers=400, terminals=800, days=40)


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b = simulate(SMALL, seed=7), simulate(SMALL, seed=7)
    assert a.transactions.equals(b.transactions)
    assert a.labels.equals(b.labels)
    c = simulate(SMALL, seed=8)
    assert not a.transactions.equals(c.transactions)


def test_every_scenario_occurs_and_only_frauds_have_one() -> None:
    tx = simulate(profile("full", customers=1000, terminals=2000, days=60), seed=1).transactions
    scenario = np.asarray(tx["scenario"].to_pylist())
    fraud = tx["is_fraud"].to_numpy() == 1
    assert set(scenario.tolist()) == set(SCENARIOS) - {"card_enumeration"}, "not by default"
    assert ((scenario != "genuine") == fraud).all()
    assert 0.002 < fraud.mean() < 0.05
    times = tx["event_time_ms"].to_numpy()
    assert (np.diff(times) >= 0).all(), "transactions come in event-time order"
    cnp = np.asarray(tx["channel"].to_pylist()) == "cnp"
    assert tx["device_id"].null_count == int((~cnp).sum()), "devices only online"
    # card testing: bursts of tiny online amounts
    testing = scenario == "card_testing"
    assert (tx["amount"].to_numpy()[testing] <= 1500).all()
    assert cnp[testing].all()


def test_card_enumeration_starts_when_told_and_looks_like_a_bot_wave() -> None:
    p = replace(SMALL, scenarios=SCENARIOS[1:], starts=(("card_enumeration", 30),))
    tx = simulate(p, seed=3).transactions
    wave = np.asarray(tx["scenario"].to_pylist()) == "card_enumeration"
    day = (tx["event_time_ms"].to_numpy() - START_MS) // DAY_MS
    assert wave.any()
    assert (day[wave] >= 30).all(), "nothing before its first day"
    genuine_after = ((np.asarray(tx["scenario"].to_pylist()) == "genuine") & (day >= 30)).sum()
    assert 0.25 < wave.sum() / genuine_after < 0.35, "0.3 per genuine transaction"
    assert tx.filter(pa.array(wave))["device_id"].null_count == int(wave.sum()), "no device"
    amounts = tx["amount"].to_numpy()[wave]
    assert (amounts >= 1).all()
    assert (amounts <= 15).all()
    checkouts = {
        (d, t)
        for d, t in zip(day[wave], np.asarray(tx["terminal_id"].to_pylist())[wave], strict=True)
    }
    assert len(checkouts) == len(set(day[wave].tolist())), "one compromised checkout a day"
    with pytest.raises(ConfigError, match="cannot start later"):
        replace(SMALL, starts=(("amount", 10),))


def test_handbook_profile_matches_the_handbook_setting() -> None:
    p = profile("handbook")
    assert (p.customers, p.terminals, p.days) == (5_000, 10_000, 183)
    sim = simulate(profile("handbook", customers=500, days=30), seed=0)
    tx = sim.transactions
    scenario = set(tx["scenario"].to_pylist())
    assert scenario <= {"genuine", "amount", "terminal", "customer"}
    assert set(tx["channel"].to_pylist()) == {"cp"}
    amount_fraud = pc.greater(tx["amount"], 220).to_numpy(zero_copy_only=False)
    assert (tx["is_fraud"].to_numpy()[amount_fraud] == 1).all(), "every amount over 220 is fraud"
    # handbook: ~1.75M transactions at full scale, i.e. ~1.9 per customer-day
    per_customer_day = tx.num_rows / (500 * 30)
    assert 1.5 < per_customer_day < 2.2


def test_labels_arrive_after_their_transactions() -> None:
    sim = simulate(SMALL, seed=3)
    tx, labels = sim.transactions, sim.labels
    assert labels.num_rows == tx.num_rows
    assert sorted(labels["transaction_id"].to_pylist()) == sorted(tx["transaction_id"].to_pylist())
    delay = labels["label_time_ms"].to_numpy() - labels["event_time_ms"].to_numpy()
    fraud = labels["is_fraud"].to_numpy() == 1
    assert (delay[fraud] >= DAY_MS).all()
    assert (delay[~fraud] == 7 * DAY_MS).all()
    assert (np.diff(labels["label_time_ms"].to_numpy()) >= 0).all(), "labels in arrival order"
    hb = simulate(profile("handbook", customers=300, days=20), seed=0).labels
    assert set((hb["label_time_ms"].to_numpy() - hb["event_time_ms"].to_numpy()).tolist()) == {
        7 * DAY_MS
    }


def test_bad_profiles_are_refused() -> None:
    with pytest.raises(ConfigError, match="choose one of"):
        profile("nope")
    with pytest.raises(ConfigError, match="customers=0"):
        profile("full", customers=0)


def test_write_read_and_publish(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim = simulate(profile("full", customers=50, terminals=100, days=5), seed=2)
    data.write(sim, tmp_path / "sim")
    tx, labels = data.read(tmp_path / "sim")
    assert tx.equals(sim.transactions)
    assert labels.equals(sim.labels)
    log = EmbeddedLog(tmp_path / "log.db")
    sent = publish(log, tx, labels, partitions=2)
    assert sent == {"transactions": tx.num_rows, "labels": labels.num_rows}
    codec = Codec(Transaction)
    records = [
        r
        for p in range(2)
        for r in log.read(TopicPartition("transactions", p), 0, max_records=10**6)
    ]
    assert len(records) == tx.num_rows
    decoded = codec.decode(records[0].value)
    assert decoded.transaction_id in set(tx["transaction_id"].to_pylist())
    assert b"is_fraud" not in records[0].value, "the ground truth is not on the transactions topic"
    label = Codec(Label).decode(log.read(TopicPartition("labels", 0), 0, max_records=1)[0].value)
    assert label.label_time_ms > label.event_time_ms
    log.close()
    with pytest.raises(ConfigError, match="loopline simulate fraud --out"):
        data.read(tmp_path / "missing")
