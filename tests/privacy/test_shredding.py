"""Crypto-shredding on the embedded log and on a real Kafka broker, with the SQLite and the
PostgreSQL key store: values are stored encrypted, read back decrypted, and an erased
subject's records stop being readable anywhere; Kafka retention deletes a prefix."""

from __future__ import annotations

import json
import sqlite3
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from loopline.events import EmbeddedLog, EventLog, Message, Record, TopicPartition, open_log
from loopline.privacy import ErasureLog, Identifiers, Retention, RetentionJob, Subject, erase
from loopline.privacy import expiries as retention_expiries
from loopline.privacy.shredding import KeyStore, ShreddedLog, shredded_log_target

SUBJECT = Subject(
    field="customer_id",
    topics=("transactions",),
    linked=("card_token", "device_id", "transaction_id"),
)
KAFKA_AND_POSTGRES = [pytest.mark.kafka, pytest.mark.postgres]


@dataclass(frozen=True)
class Customer:
    id: str
    token: str
    device: str
    transactions: tuple[str, str]

    @classmethod
    def make(cls, name: str) -> Customer:
        u = uuid.uuid4().hex[:10]
        return cls(
            f"cust-{name}-{u}", f"tok_{name}{u}", f"dev-{name}-{u}", (f"tx-{u}-1", f"tx-{u}-2")
        )

    @property
    def identifiers(self) -> tuple[str, ...]:
        return (self.id, self.token, self.device, *self.transactions)

    def events(self) -> list[Message]:
        return [
            Message(
                json.dumps(
                    {"customer_id": self.id, "card_token": self.token,
                     "device_id": self.device, "transaction_id": tx, "amount": 12.5}
                ).encode(),
                key=self.token.encode(),
                timestamp_ms=1_700_000_000_000 + i,
            )
            for i, tx in enumerate(self.transactions)
        ]  # fmt: skip


@dataclass
class Setup:
    log: ShreddedLog
    topic: str
    key_store_url: str
    folder: Path


@pytest.fixture(
    params=[
        pytest.param(("embedded", "sqlite"), id="embedded-sqlite"),
        pytest.param(("embedded", "postgres"), id="embedded-postgres", marks=pytest.mark.postgres),
        pytest.param(("kafka", "sqlite"), id="kafka-sqlite", marks=pytest.mark.kafka),
        pytest.param(("kafka", "postgres"), id="kafka-postgres", marks=KAFKA_AND_POSTGRES),
    ]
)  # fmt: skip
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    log_kind, keys_kind = request.param
    url = request.getfixturevalue("kafka_url") if log_kind == "kafka" else str(tmp_path / "ev.db")
    keys_url = (
        request.getfixturevalue("postgres_url")
        if keys_kind == "postgres"
        else str(tmp_path / "k.db")
    )
    topic = f"transactions-{uuid.uuid4().hex[:8]}"  # a fresh topic on a shared broker
    subject = Subject(field=SUBJECT.field, topics=(topic,), linked=SUBJECT.linked)
    keys = KeyStore(keys_url)
    log = ShreddedLog(open_log(url), keys=keys, subject=subject)
    log.create_topic(topic, partitions=2)
    log.create_topic(f"{topic}-other")
    yield Setup(log, topic, keys_url, tmp_path)
    log.close()
    keys.close()


def read_all(log: EventLog, topic: str) -> list[Record]:
    out: list[Record] = []
    for p in range(log.partitions(topic)):
        tp = TopicPartition(topic, p)
        offset = 0
        while batch := log.read(tp, offset):
            out += batch
            offset = batch[-1].offset + 1
    return out


def poll_until(log: EventLog, group: str, topic: str, want: int) -> list[Record]:
    consumer = log.consumer(group, [topic], session_timeout_s=6.0)
    got: list[Record] = []
    deadline = time.monotonic() + 20
    while len(got) < want and time.monotonic() < deadline:
        got += consumer.poll(max_records=100, timeout_s=0.5)
    got += consumer.poll(max_records=100, timeout_s=0.2)  # nothing more should come
    consumer.close()
    return got


def stored_key(key_store_url: str, subject_id: str) -> bytes | None:
    query = "SELECT key FROM subject_keys WHERE subject_id = {}"
    if key_store_url.startswith("postgres"):
        with psycopg.connect(key_store_url) as conn:
            row = conn.execute(query.format("%s"), (subject_id,)).fetchone()
    else:
        with sqlite3.connect(key_store_url) as conn:
            row = conn.execute(query.format("?"), (subject_id,)).fetchone()
    return None if row is None else bytes(row[0])


def test_values_are_stored_encrypted_and_an_erased_subject_is_unreadable(setup: Setup) -> None:
    log, topic = setup.log, setup.topic
    a, b = Customer.make("a"), Customer.make("b")
    anonymous = Message(b'{"customer_id": "", "note": "no subject"}', key=b"k")
    log.append_many(topic, [*a.events(), *b.events(), anonymous])
    log.append_many(f"{topic}-other", [Message(a.id.encode())])  # not declared: as is
    sent = {m.value: m.key for m in [*a.events(), *b.events(), anonymous]}

    read = read_all(log, topic)
    assert {r.value: r.key for r in read} == sent  # decrypted, original keys back
    raw = read_all(log.log, topic)
    assert len(raw) == 5
    for r in raw:
        stored = r.value + (r.key or b"")
        assert not any(i.encode() in stored for i in a.identifiers + b.identifiers)
    assert sum(r.value.startswith(b"LLS1") for r in raw) == 4
    hashed = {r.key for r in raw if r.value.startswith(b"LLS1")}
    assert len(hashed) == 2  # one stable hash per message key: same key, same partition
    assert read_all(log.log, f"{topic}-other")[0].value == a.id.encode()

    a_key = stored_key(setup.key_store_url, a.id)
    assert a_key is not None
    assert len(a_key) == 32
    sqlite_keys = not setup.key_store_url.startswith("postgres")
    if sqlite_keys:
        assert any(a_key in f.read_bytes() for f in setup.folder.glob("k.db*"))
    report = erase(
        a.id,
        subject=log.subject,
        log=log,  # the wrapper: the linked values are found in the decrypted events
        targets=[shredded_log_target(log)],
        audit=ErasureLog(setup.folder / "erasures.jsonl"),
    )
    assert report.counts == {"event log keys": 1}
    assert report.linked == 4  # the token, the device and two transaction ids
    assert shredded_log_target(log).erase(Identifiers(log.subject, a.id)) == 0

    after = read_all(log, topic)
    assert {r.value for r in after} == {m.value for m in [*b.events(), anonymous]}
    assert not any(i.encode() in r.value for r in after for i in a.identifiers)
    polled = poll_until(log, f"g-{uuid.uuid4().hex[:8]}", topic, want=3)
    assert sorted(r.value for r in polled) == sorted(r.value for r in after)
    assert len(read_all(log.log, topic)) == 5  # the records stay, unreadable

    assert stored_key(setup.key_store_url, a.id) is None
    assert stored_key(setup.key_store_url, b.id) is not None
    if sqlite_keys:  # the bytes are gone from the file and its WAL
        assert not any(a_key in f.read_bytes() for f in setup.folder.glob("k.db*"))


def test_a_key_store_file_is_private_and_other_caches_expire(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "keys" / "k.db"
    keys = KeyStore(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reader_keys = KeyStore(f"file://{path}", cache_ttl_s=60, clock=lambda: now[0])
    log = EmbeddedLog(tmp_path / "ev.db")
    writer = ShreddedLog(log, keys=keys, subject=SUBJECT)
    reader = ShreddedLog(log, keys=reader_keys, subject=SUBJECT)
    writer.create_topic("transactions")
    a = Customer.make("a")
    writer.append_many("transactions", a.events())
    assert len(read_all(reader, "transactions")) == 2  # the reader caches a's key

    assert keys.erase(a.id) == 1
    assert read_all(writer, "transactions") == []  # the eraser's own cache: at once
    assert len(read_all(reader, "transactions")) == 2  # another process: until its TTL
    now[0] += 61
    assert read_all(reader, "transactions") == []
    log.close()
    keys.close()
    reader_keys.close()


def test_tampered_or_moved_values_do_not_decrypt(tmp_path: Path) -> None:
    keys = KeyStore(str(tmp_path / "k.db"))
    log = ShreddedLog(EmbeddedLog(tmp_path / "ev.db"), keys=keys, subject=SUBJECT)
    log.create_topic("transactions")
    log.append_many("transactions", Customer.make("a").events()[:1])
    (sealed,) = log.log.read(TopicPartition("transactions", 0), 0)
    log.log.create_topic("copy")  # a sealed value copied to another topic fails its check
    log.log.append_many("copy", [Message(sealed.value)])
    copied = ShreddedLog(log.log, keys=keys, subject=SUBJECT, topics=["copy"])
    with pytest.raises(Exception, match=r"copy\[0\]@0 does not decrypt"):
        copied.read(TopicPartition("copy", 0), 0)
    log.close()
    keys.close()


@pytest.mark.kafka
def test_kafka_retention_deletes_a_bounded_prefix(kafka_url: str, tmp_path: Path) -> None:
    from loopline.events.kafka import KafkaLog

    topic = f"retained-{uuid.uuid4().hex[:8]}"
    kafka = open_log(kafka_url)
    assert isinstance(kafka, KafkaLog)
    kafka.create_topic(topic)
    base = int(time.time() * 1000) - 3_600_000
    kafka.append_many(
        topic, [Message(b"v%d" % i, key=b"k", timestamp_ms=base + i) for i in range(10)]
    )
    tp = TopicPartition(topic, 0)

    assert kafka.expire(base + 7, topics=[topic], limit=3) == 3
    assert [r.offset for r in kafka.read(tp, 0)][:1] == [3]  # from 0: the first kept
    keys = KeyStore(str(tmp_path / "k.db"))
    shredded = ShreddedLog(kafka, keys=keys, subject=SUBJECT, topics=[topic])
    job = RetentionJob(
        retention_expiries(Retention(events_days=1), log=shredded, topics=[topic]),
        limit=3,
        clock=lambda: (base + 7 + 86_400_000) / 1000,
    )
    assert job.run_once() == {"event log": 3}
    assert job.run_once() == {"event log": 1}
    assert job.run_once() == {"event log": 0}
    assert [r.offset for r in kafka.read(tp, 0)] == [7, 8, 9]
    assert kafka.end_offset(tp) == 10
    polled = poll_until(kafka, f"g-{uuid.uuid4().hex[:8]}", topic, want=3)
    assert [r.value for r in polled] == [b"v7", b"v8", b"v9"]
    assert kafka.expire(base + 100, topics=[topic, "no-such-topic"]) == 3
    assert kafka.read(tp, 0) == []
    assert kafka.append_many(topic, [Message(b"new")]) == [(0, 10)]
    kafka.close()
    keys.close()
