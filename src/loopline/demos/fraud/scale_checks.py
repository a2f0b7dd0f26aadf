"""What the scale demo checks at the end: one decision per answered transaction, and
the online features (Redis, written by the feature workers) equal to the offline
engine's over the same events."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopline.apps.fraud import data
from loopline.apps.fraud.features import fraud_feature_set, with_card_device
from loopline.apps.fraud.pipeline import COLUMNS
from loopline.apps.fraud.simulator import Simulation
from loopline.apps.fraud.workers import TRANSACTIONS
from loopline.events import EventLog, TopicPartition
from loopline.exceptions import TopicNotFoundError
from loopline.features import OnlineEngine, mismatch_rates
from loopline.predictions import open_prediction_log
from loopline.tasks import average_precision

PROBES = 300


def decisions_check(decisions_url: str, sim: Simulation, answered: list[str]) -> dict[str, Any]:
    """Exactly one decision per answered transaction in the prediction log, and the
    quality of those decisions on the simulation's ground truth."""
    log = open_prediction_log(decisions_url, columns=COLUMNS)
    try:
        joined = log.joined()
    finally:
        log.close()
    ids = joined.request_ids
    counts = Counter(ids)
    truth = sim.transactions.select(["transaction_id", "is_fraud"])
    scores = pa.table({"transaction_id": ids, "score": [o["score"] for o in joined.outputs]})
    decided = scores.join(truth, "transaction_id")
    y = decided["is_fraud"].to_numpy().astype(np.int8)
    return {
        "decisions": len(ids),
        # no model score: degraded to the rules alone
        "rules_only_decisions": sum(o["model_score"] is None for o in joined.outputs),
        "exactly_one_decision_each": set(counts) == set(answered) and max(counts.values()) == 1,
        "average_precision": average_precision(y, decided["score"].to_numpy()),
        "versions": joined.model_versions,
    }


def dead_lettered(log: EventLog) -> set[tuple[int, int]]:
    """(partition, offset) of each transaction the workers dead-lettered (with reason)."""
    out: set[tuple[int, int]] = set()
    try:
        partitions = log.partitions(f"{TRANSACTIONS}.dlq")
    except TopicNotFoundError:
        return out
    for p in range(partitions):
        tp, offset = TopicPartition(f"{TRANSACTIONS}.dlq", p), 0
        while records := log.read(tp, offset, max_records=5000):
            for r in records:
                letter = msgspec.json.decode(r.value)
                if letter["source_topic"] == TRANSACTIONS:
                    out.add((letter["partition"], letter["offset"]))
            offset = records[-1].offset + 1
    return out


def online_offline_mismatches(
    sim: Simulation,
    positions: np.ndarray,
    engine: OnlineEngine,
    labelled: int,
    dropped: set[tuple[int, int]],
) -> int:
    """Probe transactions just after the last published event, read online (Redis, every
    partition's state) and computed offline from the same events in their partitions'
    order, less those dead-lettered; the number of feature values that differ.

    ``positions``: the (partition, offset) of each published transaction, in the
    simulation's order; ``labelled``: how many of its labels were published."""
    fs = fraud_feature_set()
    kept = np.array([(int(p), int(o)) not in dropped for p, o in positions])
    tx = with_card_device(sim.transactions.slice(0, len(positions))).filter(pa.array(kept))
    positions, published = positions[kept], int(kept.sum())
    labels = sim.labels.slice(0, labelled)
    picks = apart(tx, sorted({v.entity.join_key for v in fs.views}))
    last = max(int(tx["event_time_ms"][-1].as_py()), int(labels["label_time_ms"][-1].as_py()))
    t = last + 60_000
    probes = tx.take(pa.array(picks))
    probes = probes.set_column(probes.column_names.index("event_time_ms"), "event_time_ms",
                               pa.array(np.full(len(picks), t, dtype=np.int64)))  # fmt: skip
    probes = probes.set_column(
        0, "transaction_id", pc.binary_join_element_wise("probe-", probes["transaction_id"], "")
    )
    partition = np.concatenate([positions[:, 0], positions[picks, 0]])
    offset = np.concatenate([positions[:, 1], np.iinfo(np.int32).max + np.arange(len(picks))])
    history = pa.concat_tables([tx, probes])
    times = history["event_time_ms"].to_numpy()
    arrival = np.empty_like(times)
    for p in np.unique(partition):
        rows = np.flatnonzero(partition == p)
        rows = rows[np.argsort(offset[rows], kind="stable")]
        arrival[rows] = np.maximum.accumulate(times[rows])
    history = history.append_column("_partition", pa.array(partition)).append_column(
        "_offset", pa.array(offset)).append_column("_arrival_ms", pa.array(arrival))  # fmt: skip
    spine = history.slice(published)
    offline = fs.offline(
        {"transactions": history, "labels": labels}, spine.drop_columns(["_arrival_ms"])
    )
    online = fs.online(engine, data.columns(probes))
    rates = mismatch_rates(online, offline)
    return round(sum(rates.values()) * len(picks))


def apart(tx: pa.Table, keys: list[str]) -> np.ndarray:
    """Up to ``PROBES`` random rows that share no entity key (each probe is scored alone
    online; offline, probes of one card at the same time would count each other)."""
    order = np.random.default_rng(0).permutation(tx.num_rows)
    columns = {k: tx[k].to_numpy(zero_copy_only=False) for k in keys}
    seen: set[tuple[str, object]] = set()
    picks: list[int] = []
    for i in order.tolist():
        mine = {(k, columns[k][i]) for k in keys if columns[k][i]}
        if not mine & seen:
            seen |= mine
            picks.append(i)
            if len(picks) == PROBES:
                break
    return np.sort(np.array(picks, dtype=np.int64))
