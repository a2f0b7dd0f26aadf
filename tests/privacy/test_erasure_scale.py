"""Erasing one customer on the scale profile's Redis (event log, online features) and
PostgreSQL (prediction log, labels): no key, entry or row of theirs left."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.apps.fraud.erasure import Stores, erase_customer
from loopline.events import open_log
from loopline.features import RedisStore
from loopline.predictions import open_prediction_log
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
    predictions.close()
    store.close()
    log.close()
