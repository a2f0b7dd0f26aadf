"""kill -9 the feature worker at random points: after restarts, state equals the offline truth."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from loopline.apps.fraud import Transaction, fraud_views, random_transactions
from loopline.events import Codec, EmbeddedLog, Message, TopicPartition
from loopline.features import EmbeddedStore, OnlineEngine, OnlineStore, training_set
from loopline.features.history import history_table

ROUNDS = 10
EVENTS = 60_000


def produce(path: Path) -> list[Transaction]:
    log = EmbeddedLog(path)
    log.create_topic("transactions", partitions=3)
    codec = Codec(Transaction)
    txs = random_transactions(EVENTS, cards=400, seed=3)
    log.append_many(
        "transactions",
        [
            Message(codec.encode(t), key=t.card_token.encode(), timestamp_ms=t.event_time_ms)
            for t in txs
        ],
    )
    log.close()
    return txs


def crash_and_restart(log_url: str, store_spec: str, rng: random.Random) -> int:
    script = Path(__file__).with_name("feature_worker.py")
    kills, mid_stream = 0, 0
    for _ in range(ROUNDS):
        child = subprocess.Popen(
            [sys.executable, str(script), log_url, store_spec, "transactions"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        for _ in range(rng.randint(1, 8)):  # let it run some rounds of micro-batches,
            child.stdout.readline()
        time.sleep(rng.uniform(0, 0.02))  # then kill it somewhere inside the next one
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            kills += 1
        child.wait()
        child.stdout.close()
        mid_stream += 0 < committed(store_spec) < EVENTS
    assert mid_stream >= ROUNDS // 2, f"only {mid_stream} of {ROUNDS} kills left a partial state"
    finished = subprocess.run(
        [sys.executable, str(script), log_url, store_spec, "transactions"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert finished.stdout.splitlines()[-1] == "done"
    return kills


def committed(store_spec: str) -> int:
    store = open_store(store_spec)
    engine = OnlineEngine(views=fraud_views(), store=store)
    total = sum(engine.offset(TopicPartition("transactions", p)) for p in range(3))
    store.close()
    return total


def open_store(spec: str) -> OnlineStore:
    if spec.startswith("redis://"):
        from loopline.features.redis import RedisStore

        return RedisStore(spec)
    return EmbeddedStore(spec)


def assert_matches_offline(store: OnlineStore, log_path: Path, txs: list[Transaction]) -> None:
    engine = OnlineEngine(views=fraud_views(), store=store)
    t_end = max(t.event_time_ms for t in txs)
    log = EmbeddedLog(log_path)
    for view in engine.views.values():
        history = history_table(log, "transactions", Transaction, view.columns)
        keys = sorted({str(getattr(t, view.entity.join_key)) for t in txs})
        spine = pa.table({view.entity.join_key: keys, view.source.timestamp: [t_end] * len(keys)})
        offline = training_set(view, history, spine).to_pylist()
        online = engine.read(view.name, keys, as_of_ms=t_end)
        for row, values in zip(offline, online, strict=True):
            for name, value in values.values.items():
                expected = row[f"{view.name}__{name}"]
                assert value == pytest.approx(expected, rel=1e-9, abs=1e-6, nan_ok=True), (
                    f"{view.name}.{name} for {row[view.entity.join_key]}"
                )
    log.close()


def test_embedded_store_survives_kill_9(tmp_path: Path) -> None:
    txs = produce(tmp_path / "events.db")
    kills = crash_and_restart(
        f"file://{tmp_path / 'events.db'}", str(tmp_path / "online.db"), random.Random(11)
    )
    assert kills >= ROUNDS // 2, "most rounds must kill the worker mid-stream"
    assert_matches_offline(EmbeddedStore(tmp_path / "online.db"), tmp_path / "events.db", txs)


@pytest.mark.redis
def test_redis_store_survives_kill_9(tmp_path: Path, redis_url: str) -> None:
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/3"  # a database of its own
    redis.Redis.from_url(url).flushdb()
    txs = produce(tmp_path / "events.db")
    kills = crash_and_restart(f"file://{tmp_path / 'events.db'}", url, random.Random(12))
    assert kills >= ROUNDS // 2, "most rounds must kill the worker mid-stream"
    assert_matches_offline(open_store(url), tmp_path / "events.db", txs)
