"""Erasing one customer on the scale profile's Redis (event log, online features) and
PostgreSQL (prediction log, labels): no key, entry or row of theirs left."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.apps.fraud.erasure import Stores, erase_customer
from loopline.events import EventLog, open_log
from loopline.features import RedisStore
from loopline.predictions import Log, open_prediction_log
from loopline.privacy import ErasureLog
from tests.predictions.test_logs import fresh_database
from tests.privacy import seed
from tests.privacy.seed import A, B

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def redis_bytes(url: str) -> bytes:
    """Every key name and value in the Redis database, concatenated."""
    import redis

    r = redis.Redis.from_url(url)
    out = []
    for name in r.scan_iter(count=1000):
        out.append(name)
        kind = r.type(name)
        if kind == b"stream":
            out += [v for _, fields in r.xrange(name) for kv in fields.items() for v in kv]
        elif kind == b"string":
            out.append(r.get(name) or b"")
        elif kind == b"hash":
            out += [v for kv in r.hgetall(name).items() for v in kv]
        elif kind == b"set":
            out += list(r.smembers(name))
        elif kind == b"zset":
            out += list(r.zrange(name, 0, -1))
    return b"\n".join(out)


def postgres_text(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT p::text FROM predictions p").fetchall()
        rows += conn.execute("SELECT l::text FROM labels l").fetchall()
    return "\n".join(r[0] for r in rows)


def test_a_customer_erased_from_redis_and_postgres(
    redis_url: str, postgres_url: str, tmp_path: Path
) -> None:
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/5"  # a database of its own on the shared server
    redis.Redis.from_url(url).flushdb()
    log = open_log(url)
    seed.seed_events(log)
    store = RedisStore(url)
    seed.seed_features(store)
    predictions = open_prediction_log(fresh_database(postgres_url, "erasure"), columns=seed.COLUMNS)
    try:
        check_erasure(url, log, store, predictions, tmp_path)
    finally:  # a failed check leaves no connection for a later test's warning
        predictions.close()
        store.close()
        log.close()


def check_erasure(
    url: str, log: EventLog, store: RedisStore, predictions: Log, tmp_path: Path
) -> None:
    seed.seed_predictions(predictions)
    before = redis_bytes(url)
    assert all(v.encode() in before for v in (A.id, A.card, A.device))

    report = erase_customer(
        A.id,
        Stores(events=log, predictions=predictions, features=store,
               audit=ErasureLog(tmp_path / "erasures.jsonl")),
    )  # fmt: skip

    assert report.counts["event log"] == 5
    assert report.counts["dead letters"] == 1
    assert report.counts["online features"] >= 4
    assert report.counts["prediction log and labels"] == 3
    after, rows = redis_bytes(url), postgres_text(predictions.url)  # type: ignore[attr-defined]
    assert [v for v in A.identifiers if v.encode() in after] == []
    assert [v for v in A.identifiers if v in rows] == []
    assert all(v.encode() in after for v in (B.id, B.card, B.device))
    assert B.card in rows


@pytest.mark.kafka
def test_a_customer_erased_from_kafka_by_shredding_their_key(
    kafka_url: str, postgres_url: str, tmp_path: Path
) -> None:
    import contextlib
    import uuid

    import msgspec

    from loopline.apps.fraud.erasure import SHREDDED_TOPICS, open_events
    from loopline.apps.fraud.events import Label, Transaction
    from loopline.events import (
        Codec,
        DeadLetter,
        DeadLetterQueue,
        Message,
        Record,
        TopicPartition,
    )
    from loopline.exceptions import SchemaError, TopicExistsError
    from loopline.privacy import ShreddedLog

    keys = fresh_database(postgres_url, f"keys_{uuid.uuid4().hex[:6]}")
    log = open_events(kafka_url, keys=keys)
    assert isinstance(log, ShreddedLog)
    tx_codec, label_codec = Codec(Transaction), Codec(Label)
    for topic in SHREDDED_TOPICS:
        with contextlib.suppress(TopicExistsError):  # a broker the session shares
            log.create_topic(topic, partitions=1)
    for c in (A, B):  # what the service, the simulator and the notifier now write
        log.append_many(
            SHREDDED_TOPICS[0],
            [Message(tx_codec.encode(t), key=c.card.encode()) for t in seed.transactions(c)],
        )
        label = Label(
            transaction_id=c.transactions[0], label_time_ms=seed.NOW_MS, event_time_ms=0,
            card_token=c.card, terminal_id=seed.TERMINAL, is_fraud=1.0, customer_id=c.id,
        )  # fmt: skip
        log.append_many(
            SHREDDED_TOPICS[1], [Message(label_codec.encode(label), key=c.card.encode())]
        )
        note = {"transaction_id": c.transactions[1], "card_token": c.card, "customer_id": c.id}
        log.append_many(
            SHREDDED_TOPICS[2], [Message(msgspec.json.encode(note), key=c.card.encode())]
        )
    # a malformed record of A's (amount as text): its dead letter is A's too
    bad = b'{"v": 1, "transaction_id": "tx-a-9", "customer_id": "%s", "card_token": "%s", ' % (
        A.id.encode(),
        A.card.encode(),
    )
    record = Record(SHREDDED_TOPICS[0], 0, 0, seed.NOW_MS, A.card.encode(), bad + b'"amount": "x"}')
    DeadLetterQueue(log, SHREDDED_TOPICS[0]).send_many(
        [(record, SchemaError("amount: not a number"))]
    )
    predictions = open_prediction_log(fresh_database(postgres_url, "shred"), columns=seed.COLUMNS)
    seed.seed_predictions(predictions)

    def everything(of: object) -> bytes:
        out = b""
        for topic in (*SHREDDED_TOPICS, f"{SHREDDED_TOPICS[0]}.dlq"):
            tp = TopicPartition(topic, 0)
            for r in of.read(tp, 0, max_records=10_000):  # type: ignore[attr-defined]
                out += (r.key or b"") + r.value
        return out

    def letters(of: object) -> list[bytes]:  # the records the dead letters keep, if readable
        tp = TopicPartition(f"{SHREDDED_TOPICS[0]}.dlq", 0)
        out = []
        for r in of.read(tp, 0, max_records=10_000):  # type: ignore[attr-defined]
            try:
                out.append(msgspec.json.decode(r.value, type=DeadLetter).value)
            except msgspec.DecodeError:
                out.append(b"(sealed)")
        return out

    assert b"(sealed)" in letters(log.log), "stored encrypted"
    assert not any(b"tx-a-9" in v for v in letters(log.log))
    assert any(A.card.encode() in v for v in letters(log)), "readable while the key exists"
    raw = everything(log.log)
    assert [v for v in (*A.identifiers, *B.identifiers) if v.encode() in raw] == []
    assert A.card.encode() in everything(log), "read back decrypted while the key exists"

    report = erase_customer(
        A.id, Stores(events=log, predictions=predictions, audit=ErasureLog(tmp_path / "e.jsonl"))
    )

    assert report.counts["event log keys"] == 1
    assert report.counts["prediction log and labels"] == 3
    readable = everything(log)
    assert not any(b"tx-a-9" in v for v in letters(log)), "the dead letter went with the key"
    assert [v for v in A.identifiers if v.encode() in readable] == []
    assert all(v.encode() in readable for v in (B.id, B.card)), "the other customer stays"
    assert [v for v in A.identifiers if v in postgres_text(predictions.url)] == []  # type: ignore[attr-defined]
    predictions.close()
    log.close()
