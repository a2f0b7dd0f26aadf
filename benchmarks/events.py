"""Event-log benchmark: batched append, group consume, append latency; raw-client baseline.

    loopline bench events --backend embedded|kafka|redis [--url URL] [--events N] [--json]

Without --url it starts a local server for the run (tansu for Kafka, redis-server for
Redis) and stops it afterwards. Payloads are ~1 KB JSON transactions, encoded before
timing. The baseline writes the same bytes with the backend's raw client (sqlite3
executemany / confluent-kafka produce+flush / redis-py pipelined XADD), so the ratio
is what loopline's layer costs. Figures are medians of --repeats runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from loopline.apps.fraud import Transaction, random_transactions
from loopline.events import Codec, EventLog, Message, open_log
from loopline.servers import redis_server, tansu_broker

BATCH = 2000
TARGETS = {"embedded": 100_000, "kafka": 50_000, "redis": 30_000}


def payloads(n: int) -> list[Message]:
    codec = Codec(Transaction)
    pad = "x" * 700  # a transaction plus enrichment metadata: ~1 KB on the wire
    out = []
    for tx in random_transactions(n, seed=1):
        raw = codec.encode(tx)[:-1] + f',"note":"{pad}"}}'.encode()
        out.append(Message(raw, key=tx.card_token.encode(), timestamp_ms=tx.event_time_ms))
    return out


@contextlib.contextmanager
def server_for(backend: str, url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "embedded":
            yield f"file://{tmp}/events.db"
        elif backend == "kafka":
            with tansu_broker(Path(tmp)) as server:
                yield server.url
        else:
            with redis_server(Path(tmp)) as server:
                yield server.url


def append_rate(log: EventLog, topic: str, messages: list[Message]) -> float:
    started = time.perf_counter()
    for i in range(0, len(messages), BATCH):
        log.append_many(topic, messages[i : i + BATCH])
    return len(messages) / (time.perf_counter() - started)


def consume_rate(log: EventLog, topic: str, n: int) -> float:
    consumer = log.consumer(f"bench-{uuid.uuid4().hex[:8]}", [topic], session_timeout_s=6)
    total, timed, started = 0, 0, time.perf_counter()
    deadline = time.monotonic() + 120
    while total < n and time.monotonic() < deadline:
        batch = consumer.poll(max_records=BATCH, timeout_s=0.5)
        if total == 0 and batch:
            started = time.perf_counter()  # from the first record: group join is not throughput
        else:
            timed += len(batch)
        total += len(batch)
    elapsed = time.perf_counter() - started
    consumer.close()
    if total < n:
        raise RuntimeError(f"consumed only {total:,} of {n:,} records within 120 s")
    return timed / elapsed


def append_latencies_ms(log: EventLog, topic: str, messages: list[Message]) -> list[float]:
    out = []
    for m in messages:
        started = time.perf_counter()
        log.append_many(topic, [m])
        out.append((time.perf_counter() - started) * 1000)
    return out


def raw_baseline(backend: str, url: str, messages: list[Message]) -> float:
    """Append the same bytes with the raw client, no loopline layer."""
    started: float
    if backend == "embedded":
        import sqlite3

        raw_path = f"{url.removeprefix('file://')}.{uuid.uuid4().hex[:8]}.raw"
        conn = sqlite3.connect(raw_path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE log (offset INTEGER PRIMARY KEY, ts INTEGER, key BLOB, value BLOB)"
        )
        started = time.perf_counter()
        for i in range(0, len(messages), BATCH):
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO log (ts, key, value) VALUES (?, ?, ?)",
                [(m.timestamp_ms, m.key, m.value) for m in messages[i : i + BATCH]],
            )
            conn.execute("COMMIT")
    elif backend == "kafka":
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient, NewTopic

        bootstrap = url.removeprefix("kafka://")
        topic = f"raw-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, 4, 1)])[topic].result()
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "linger.ms": 5,
                "batch.num.messages": 10_000,
                "partitioner": "consistent",
            }
        )
        started = time.perf_counter()
        for i in range(0, len(messages), BATCH):
            for m in messages[i : i + BATCH]:
                while True:
                    try:
                        producer.produce(topic, m.value, m.key, timestamp=m.timestamp_ms or 0)
                        break
                    except BufferError:
                        producer.poll(0.01)
            producer.flush()
    else:
        import redis

        client = redis.Redis.from_url(url)
        started = time.perf_counter()
        for i in range(0, len(messages), BATCH):
            pipe = client.pipeline(transaction=False)
            for m in messages[i : i + BATCH]:
                pipe.xadd(
                    f"raw-{i % 4}", {"t": m.timestamp_ms or 0, "k": m.key or b"", "v": m.value}
                )
            pipe.execute()
    return len(messages) / (time.perf_counter() - started)


def median_of(repeats: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(repeats))


def run(backend: str, url: str | None, n: int, repeats: int) -> dict[str, Any]:
    messages = payloads(n)
    with server_for(backend, url) as address:
        log = open_log(address)
        topics = []

        def one_append() -> float:
            topics.append(f"bench-{uuid.uuid4().hex[:8]}")
            log.create_topic(topics[-1], partitions=4)
            return append_rate(log, topics[-1], messages)

        append = median_of(repeats, one_append)
        baseline = median_of(repeats, lambda: raw_baseline(backend, address, messages))
        consume = median_of(repeats, lambda: consume_rate(log, topics.pop(), n))
        lat_topic = f"bench-lat-{uuid.uuid4().hex[:8]}"
        log.create_topic(lat_topic, partitions=4)
        latencies = sorted(append_latencies_ms(log, lat_topic, messages[:2000]))
        log.close()
    return {
        "benchmark": "events",
        "backend": backend,
        "events": n,
        "event_bytes": round(statistics.mean(len(m.value) for m in messages)),
        "batch": BATCH,
        "repeats": repeats,
        "append_events_per_s": round(append),
        "baseline_raw_append_events_per_s": round(baseline),
        "append_vs_raw_ratio": round(append / baseline, 2),
        "consume_events_per_s": round(consume),
        "append_p50_ms": round(latencies[len(latencies) // 2], 3),
        "append_p99_ms": round(latencies[int(len(latencies) * 0.99)], 3),
        "target_append_events_per_s": TARGETS[backend],
    }


def print_table(result: dict[str, Any]) -> None:
    table = Table(
        title=f"event log: {result['backend']} ({result['events']:,} x "
        f"~{result['event_bytes']} B, batches of {result['batch']:,}, "
        f"median of {result['repeats']})"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("append (loopline)", f"{result['append_events_per_s']:,} events/s")
    table.add_row(
        "append (raw client baseline)", f"{result['baseline_raw_append_events_per_s']:,} events/s"
    )
    table.add_row("loopline / raw", f"{result['append_vs_raw_ratio']:.2f}")
    table.add_row("consume (group member)", f"{result['consume_events_per_s']:,} events/s")
    table.add_row("append 1 record p50", f"{result['append_p50_ms']:.3f} ms")
    table.add_row("append 1 record p99", f"{result['append_p99_ms']:.3f} ms")
    target = result["target_append_events_per_s"]
    met = "met" if result["append_events_per_s"] >= target else "NOT met"
    table.add_row("target (batched append)", f">= {target:,} events/s: {met}")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(TARGETS), default="embedded")
    parser.add_argument("--url", help="an existing server; default: start a local one")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(args.backend, args.url, args.events, args.repeats)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
