"""Feature-engine benchmark: online updates, online reads, point-in-time joins vs merge_asof.

    loopline bench features [--events N] [--pit-events N] [--pit-spine N] [--json]

* online updates: the fraud view set (20 features over 4 entities: card, customer,
  terminal, device; two exact distinct counts among them) applied in micro-batches of
  20,000 from 10,000 cards, embedded store (a snapshot of the final state included) and
  Redis (a local redis-server, committed every batch);
* online reads: one card's features (11) and one transaction's (all 4 entities, 20);
* point-in-time join: card count/sum/mean over 1 h, 1 d, 7 d for a spine of card-time
  rows, with the DuckDB offline engine and, as the baseline, a straightforward pandas
  implementation (per-card time-based rolling windows, then ``merge_asof``), same run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from loopline.apps.fraud import fraud_views, random_transactions
from loopline.features import (
    Aggregation,
    EmbeddedStore,
    Entity,
    FeatureView,
    OnlineEngine,
    Source,
    days,
    hours,
    training_set,
)
from loopline.features.worker import to_columns
from loopline.servers import redis_server

BATCH = 20_000


def update_rates(
    engine: OnlineEngine, cols: dict[str, np.ndarray], n: int
) -> tuple[float, float, float]:
    """(events/s applied and committed, events/s with a snapshot of the final state, snapshot s).

    The embedded store snapshots every 5 s; a 200k-event run ends inside one interval, so
    the conservative figure pays for one full snapshot.
    """
    started = time.perf_counter()
    for i in range(0, n, BATCH):
        engine.update_many({k: v[i : i + BATCH] for k, v in cols.items()})
    applied = time.perf_counter() - started
    snap = 0.0
    if isinstance(engine.store, EmbeddedStore):
        started = time.perf_counter()
        engine.store.snapshot()
        snap = time.perf_counter() - started
    return n / applied, n / (applied + snap), snap


def read_latencies_us(engine: OnlineEngine, txs: list[Any], views: list[str]) -> list[float]:
    now = txs[-1].event_time_ms
    out = []
    for tx in txs[-2000:]:
        started = time.perf_counter()
        for view in views:
            key = getattr(tx, engine.views[view].entity.join_key) or ""
            engine.read(view, [key], as_of_ms=now)
        out.append((time.perf_counter() - started) * 1e6)
    return sorted(out)


def p(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))]


def online(n: int) -> dict[str, Any]:
    views = fraud_views()
    fields = sorted({c for v in views for c in v.columns})
    txs = random_transactions(n, cards=max(1000, n // 20), seed=1)
    cols = {k: np.asarray(v) for k, v in to_columns(txs, fields).items()}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine = OnlineEngine(views=views, store=EmbeddedStore(Path(tmp) / "online.db"))
        applied, durable, snap = update_rates(engine, cols, n)
        out["online_update_events_per_s"] = round(durable)
        out["online_apply_events_per_s"] = round(applied)
        out["embedded_snapshot_s"] = round(snap, 3)
        card = read_latencies_us(engine, txs, ["card"])
        every = read_latencies_us(engine, txs, list(engine.views))
        out["online_read_p50_us"], out["online_read_p99_us"] = (
            round(p(card, 0.5)),
            round(p(card, 0.99)),
        )
        out["online_read_all_entities_p99_us"] = round(p(every, 0.99))
        engine.store.close()
        with redis_server(Path(tmp) / "redis") as server:
            from loopline.features.redis import RedisStore

            redis_n = min(n, 100_000)
            engine = OnlineEngine(views=views, store=RedisStore(server.url))
            out["redis_update_events_per_s"] = round(update_rates(engine, cols, redis_n)[0])
            card = read_latencies_us(engine, txs[:redis_n], ["card"])
            out["redis_read_p50_us"], out["redis_read_p99_us"] = (
                round(p(card, 0.5)),
                round(p(card, 0.99)),
            )
            engine.store.close()
    return out


PIT_VIEW = FeatureView(
    name="card",
    entity=Entity(name="card", join_key="card_token"),
    source=Source(name="transactions", topic="transactions", timestamp="event_time_ms"),
    aggregations=(
        Aggregation(function="count", windows=(hours(1), days(1), days(7))),
        Aggregation(function="sum", column="amount", windows=(hours(1), days(1), days(7))),
        Aggregation(function="mean", column="amount", windows=(days(7),)),
    ),
)


def pit_data(events: int, spine: int, cards: int) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(7)
    span = days(60)
    ts = np.sort(rng.integers(0, span, events)) + 1_767_225_600_000
    history = pa.table(
        {
            "card_token": rng.integers(0, cards, events).astype("U8"),
            "event_time_ms": ts,
            "amount": np.round(rng.lognormal(3.5, 1.0, events), 2),
        }
    )
    spine_table = pa.table(
        {
            "card_token": rng.integers(0, cards, spine).astype("U8"),
            "event_time_ms": np.sort(rng.integers(days(7), span, spine)) + 1_767_225_600_000,
        }
    )
    return history, spine_table


def baseline_merge_asof(view: FeatureView, history: pa.Table, spine: pa.Table) -> pd.DataFrame:
    """How it is often written by hand: rolling windows per key, then merge_asof.

    Windows are pandas' (t - W, t]: exact, not tile-snapped, so values differ slightly
    from the engine's near window tails; the work done is the same.
    """
    events = history.to_pandas()
    events["time"] = pd.to_datetime(events["event_time_ms"], unit="ms")
    events = events.sort_values("time")
    rolled = events.set_index("time").groupby("card_token")["amount"]
    features = pd.DataFrame(
        {"card_token": events["card_token"].to_numpy(), "time": events["time"].to_numpy()}
    )
    for f in view.features:
        window = pd.Timedelta(milliseconds=f.window_ms)
        fn = {"count": "count", "sum": "sum", "mean": "mean"}[f.aggregation.function]
        features[f.name] = (
            getattr(rolled.rolling(window), fn)().reset_index(level=0, drop=True).to_numpy()
        )
    s = spine.to_pandas()
    s["time"] = pd.to_datetime(s["event_time_ms"], unit="ms")
    return pd.merge_asof(
        s.sort_values("time"),
        features.sort_values("time"),
        on="time",
        by="card_token",
        direction="backward",
    )


def pit(events: int, spine: int) -> dict[str, Any]:
    history, spine_table = pit_data(events, spine, cards=max(1000, events // 100))
    started = time.perf_counter()
    ours = training_set(PIT_VIEW, history, spine_table)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    base = baseline_merge_asof(PIT_VIEW, history, spine_table)
    base_s = time.perf_counter() - started
    assert ours.num_rows == len(base) == spine
    return {
        "pit_events": events,
        "pit_spine_rows": spine,
        "pit_join_rows_per_s": round(spine / ours_s),
        "baseline_merge_asof_rows_per_s": round(spine / base_s),
        "pit_vs_baseline_ratio": round(base_s / ours_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="online update events")
    parser.add_argument("--pit-events", type=int, default=10_000_000)
    parser.add_argument("--pit-spine", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {
        "benchmark": "features",
        **online(args.events),
        **pit(args.pit_events, args.pit_spine),
    }
    if args.json:
        print(json.dumps(result))
        return
    table = Table(title="feature engine")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    targets = {
        "online_update_events_per_s": ">= 200,000",
        "online_read_p99_us": "<= 100",
        "redis_read_p99_us": "<= 1,000",
        "pit_vs_baseline_ratio": ">= 5",
    }
    for key, value in result.items():
        if key != "benchmark":
            table.add_row(
                key, f"{value:,}" if isinstance(value, int) else str(value), targets.get(key, "")
            )
    Console().print(table)


if __name__ == "__main__":
    main()
