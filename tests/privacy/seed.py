"""Two customers' data in every store of the fraud system: what the erasure tests erase.

Customer A (erased) and customer B (kept) each pay with their own card and device, at a
terminal they share. A's data goes everywhere it can: transactions and labels on the
event log, a notification, a dead letter (a malformed record carrying A's card token),
online features, Parquet history, predictions with labels, and a report.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.apps.fraud.events import Label, Transaction
from loopline.apps.fraud.features import fraud_views, model_views
from loopline.apps.fraud.pipeline import COLUMNS as COLUMNS
from loopline.apps.fraud.service import NOTIFICATIONS, card_device
from loopline.events import (
    Codec,
    DeadLetterQueue,
    EventLog,
    Message,
    TopicPartition,
    decode_or_dead_letter,
)
from loopline.features import OnlineEngine, OnlineStore
from loopline.predictions import Label as KnownLabel
from loopline.predictions import Log, Row

TRANSACTIONS, LABELS = "transactions", "labels"
NOW_MS = int(time.time() * 1000)


@dataclass(frozen=True)
class Customer:
    id: str
    card: str
    device: str
    transactions: tuple[str, ...]

    @property
    def identifiers(self) -> tuple[str, ...]:
        return (self.id, self.card, self.device, *self.transactions)


A = Customer("cust-erase-0001", "tok_a11ce5ecre7a11ce", "dev-a11ce-phone", ("tx-a-1", "tx-a-2"))
B = Customer("cust-keep-0002", "tok_b0bb0bb0bb0bb0bb", "dev-b0b-laptop", ("tx-b-1", "tx-b-2"))
TERMINAL = "term-shared-01"


def transactions(c: Customer) -> list[Transaction]:
    return [
        Transaction(
            transaction_id=tx, event_time_ms=NOW_MS - (2 - i) * 60_000, card_token=c.card,
            customer_id=c.id, terminal_id=TERMINAL, merchant_category="online",
            amount=10.0 + i, currency="EUR", channel="cnp", device_id=c.device,
            latitude=48.1, longitude=11.5,
        )
        for i, tx in enumerate(c.transactions)
    ]  # fmt: skip


def seed_events(log: EventLog) -> None:
    """Transactions (keyed by card), labels, notifications and one dead letter."""
    log.create_topic(TRANSACTIONS, partitions=2)
    log.create_topic(LABELS, partitions=1)
    log.create_topic(NOTIFICATIONS, partitions=1)
    tx_codec, label_codec = Codec(Transaction), Codec(Label)
    for c in (A, B):
        log.append_many(
            TRANSACTIONS,
            [Message(tx_codec.encode(t), key=c.card.encode()) for t in transactions(c)],
        )
        label = Label(
            transaction_id=c.transactions[0], label_time_ms=NOW_MS, event_time_ms=NOW_MS,
            card_token=c.card, terminal_id=TERMINAL, is_fraud=1.0,
        )  # fmt: skip
        log.append_many(LABELS, [Message(label_codec.encode(label), key=c.card.encode())])
        note = {"transaction_id": c.transactions[1], "decision": "review", "card_token": c.card}
        log.append_many(NOTIFICATIONS, [Message(msgspec.json.encode(note), key=c.card.encode())])
    # a malformed record (amount as text) of A's: the dead-letter topic keeps its bytes
    bad = (
        b'{"v": 1, "transaction_id": "tx-a-9", "card_token": "%s", "amount": "x"}' % A.card.encode()
    )
    log.create_topic("bad-source", partitions=1)
    log.append_many("bad-source", [Message(bad, key=A.card.encode())])
    records = log.read(TopicPartition("bad-source", 0), 0)
    decode_or_dead_letter(records, tx_codec, DeadLetterQueue(log, TRANSACTIONS))
    # the dead letter is on transactions.dlq; its source record is erased as A's too


def seed_features(store: OnlineStore) -> OnlineEngine:
    views = [*model_views(), *(v for v in fraud_views() if v.name in ("customer", "device"))]
    engine = OnlineEngine(views=views, store=store)
    rows = [t for c in (A, B) for t in transactions(c)]
    cols: dict[str, np.ndarray] = {
        name: np.array([getattr(t, name) for t in rows])
        for name in Transaction.__struct_fields__
        if name != "v"
    }
    card_device(cols)
    engine.update_many(cols, topic=TRANSACTIONS)
    return engine


def seed_parquet(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(
        [msgspec.structs.asdict(t) for c in (A, B) for t in transactions(c)]
    )
    path = folder / "transactions.parquet"
    pq.write_table(table, path, compression="zstd")
    return path


def seed_predictions(log: Log) -> None:
    rows = [
        Row(
            key=tx, request_id=tx, fingerprint="f" * 64, decided_ms=NOW_MS, routing_key=c.card,
            model_version="fraud:1", arm="champion", inputs=b'{"tx_amount": 10.0}',
            outputs=b'{"score": 0.9}', response=json.dumps({"transaction_id": tx}).encode(),
            columns={"decision": "review", "score": 0.9, "rules_version": "r1"},
        )
        for c in (A, B)
        for tx in c.transactions
    ]  # fmt: skip
    log.write_many(rows)
    log.add_labels([KnownLabel(c.transactions[0], 1.0, NOW_MS) for c in (A, B)])


def seed_report(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scenario.html"
    rows = "".join(f"<tr><td>{c.id}</td><td>{c.card}</td><td>{c.device}</td></tr>" for c in (A, B))
    path.write_text(f"<html><body><h1>Top customers</h1><table>{rows}</table></body></html>")
    return path
