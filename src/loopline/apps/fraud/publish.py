"""Replay simulated transactions and their late labels into the event log, in arrival
order, at a given rate (``loopline simulate fraud --publish URL --rate R``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
from rich.progress import Progress

from loopline.apps.fraud.events import Label, Transaction
from loopline.events import Codec, EventLog, Message
from loopline.exceptions import TopicNotFoundError

BATCH = 2_000
TOPICS = {"transactions": Transaction, "labels": Label}


def publish(
    log: EventLog,
    transactions: pa.Table,
    labels: pa.Table,
    *,
    rate: float | None = None,
    partitions: int = 4,
) -> dict[str, int]:
    """Append every transaction (without its ground truth) and label, keyed by card, in
    the order they arrive (labels at their ``label_time_ms``); ``rate`` records per
    second, or as fast as the log takes them. Returns the counts per topic."""
    for topic in TOPICS:
        try:
            log.partitions(topic)
        except TopicNotFoundError:
            log.create_topic(topic, partitions=partitions)
    streams = {
        "transactions": (transactions, transactions["event_time_ms"].to_numpy()),
        "labels": (labels, labels["label_time_ms"].to_numpy()),
    }
    times = np.concatenate([t for _, t in streams.values()])
    which = np.repeat([0, 1], [len(t) for _, t in streams.values()])
    row = np.concatenate([np.arange(len(t)) for _, t in streams.values()])
    order = np.lexsort((which, times))
    codecs: dict[str, Codec[Any]] = {topic: Codec(schema) for topic, schema in TOPICS.items()}
    fields = {topic: set(schema.__struct_fields__) for topic, schema in TOPICS.items()}
    started = time.perf_counter()
    sent = dict.fromkeys(TOPICS, 0)
    with Progress() as progress:
        task = progress.add_task("publishing", total=len(order))
        for lo in range(0, len(order), BATCH):
            chunk = order[lo : lo + BATCH]
            for k, topic in enumerate(TOPICS):
                rows = row[chunk[which[chunk] == k]]
                if len(rows):
                    table = streams[topic][0]
                    keep = [c for c in table.column_names if c in fields[topic]]
                    batch = table.select(keep).take(pa.array(rows)).to_pylist()
                    log.append_many(topic, [to_message(codecs[topic], topic, r) for r in batch])
                    sent[topic] += len(rows)
            progress.advance(task, len(chunk))
            if rate:
                ahead = (lo + len(chunk)) / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
    return sent


def to_message(codec: Codec[Any], topic: str, row: dict[str, Any]) -> Message:
    """A simulated row as its topic's record: keyed by card, stamped with its time."""
    ts = row["event_time_ms"] if topic == "transactions" else row["label_time_ms"]
    event = codec.schema(**row)
    return Message(codec.encode(event), key=str(row["card_token"]).encode(), timestamp_ms=int(ts))
