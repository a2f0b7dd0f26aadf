"""loopline bench score: batch scoring into a database against a pandas + LightGBM script.

``loopline score fraud`` and a plain pandas + LightGBM script on the same files, in the
same run.

    loopline bench score [--customers N] [--days N] [--chunk-rows N] [--repeats N]
                         [--database sqlite|postgresql] [--sample N] [--json] [--save]

Data: ``loopline simulate fraud`` (profile full) written as Parquet; the model: a fraud
model trained on another simulation and registered (ONNX and LightGBM in one bundle).

* ours (:mod:`loopline.apps.fraud.batch`): reads the Parquet files, computes every
  transaction's point-in-time features with the offline engine (DuckDB), scores chunks
  of ``--chunk-rows`` with the bundle's ONNX model (ONNX Runtime through the loader the
  service uses; a chunk split over the cores, each part on its one-thread session),
  writes each chunk with its progress row in one transaction (resumable, no duplicates).
  Timed end to end: reading, features, model load, scoring, writing.
* baseline, the script a user writes with pandas: ``pd.read_parquet``; the same 44
  features with pandas (per key ``sort_values`` + ``groupby().rolling(window,
  closed="left")`` count/sum/mean/std/max, ``rolling().apply`` for the distinct
  terminals of a day, ``shift`` for the previous transaction; the terminal's fraud
  rate from the labels as they arrived by cumulative sums and two ``merge_asof``; the
  request and derived features with NumPy); one vectorised ``Booster.predict`` of the
  bundle's LightGBM model over all rows (LightGBM's default threads: every core, which
  favours the baseline); ``DataFrame.to_sql(chunksize=50_000)`` into the same kind of
  database (SQLite through ``sqlite3``, PostgreSQL through SQLAlchemy + psycopg). No
  resumability, no idempotency. Timed end to end the same way.

Both run ``--repeats`` times, alternating, each into a fresh database; medians reported.
``identical_to_online`` is measured in the run: ``--sample`` transactions spread over the
input are replayed through the online path (the online feature engine fed every earlier
transaction and every label arrived by then, then the service's scoring function,
:class:`loopline.serving.TabularScorer`, with the same bundle) and their scores compared
with the ones ours wrote, exactly (==). ``baseline_agreement`` is the share of rows whose
baseline score is within 1e-6 of ours (its hand-written windows differ at the edges).
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopline.apps.fraud import data
from loopline.apps.fraud.batch import ScoreOptions, read_inputs, run
from loopline.apps.fraud.features import fraud_feature_set
from loopline.apps.fraud.simulator import profile, simulate
from loopline.apps.fraud.train import TrainOptions
from loopline.apps.fraud.train import run as train
from loopline.features import EmbeddedStore, OnlineEngine
from loopline.models import ServingModel, load
from loopline.registry import Registry
from loopline.serving import Routing, TabularScorer

DAY_MS, HOUR_MS = 86_400_000, 3_600_000
EARTH_KM = 6371.0088


# --- the baseline: what a user writes with pandas and LightGBM -------------------------


def rolled(tx: pd.DataFrame, key: str, column: str, window: str, how: str) -> np.ndarray:
    """``how`` of ``column`` over the ``window`` before each row, per ``key`` (rows with
    an empty key get NaN), in ``tx``'s row order."""
    frame = tx[tx[key].notna() & (tx[key] != "")]
    frame = frame.sort_values([key, "time"], kind="stable")
    grouped = frame.set_index("time").groupby(key, sort=False)[column]
    window_of = grouped.rolling(window, closed="left")
    got = window_of.std(ddof=0) if how == "std_pop" else getattr(window_of, how)()
    values = got.to_numpy()
    out = np.full(len(tx), np.nan)
    out[frame.index.to_numpy()] = values
    return out


def distinct_before(tx: pd.DataFrame, key: str, column: str, window: str) -> np.ndarray:
    frame = tx.sort_values([key, "time"], kind="stable")
    codes = pd.Series(pd.factorize(frame[column])[0].astype(np.float64), index=frame["time"])
    counted = codes.groupby(frame[key].to_numpy(), sort=False).rolling(window, closed="left")
    values = counted.apply(lambda w: len(np.unique(w)), raw=True).to_numpy()
    out = np.full(len(tx), np.nan)
    out[frame.index.to_numpy()] = values
    return out


def previous(tx: pd.DataFrame, key: str, column: str) -> np.ndarray:
    frame = tx.sort_values([key, "time"], kind="stable")
    values = frame.groupby(key, sort=False)[column].shift(1).to_numpy(dtype=np.float64)
    out = np.full(len(tx), np.nan)
    out[frame.index.to_numpy()] = values
    return out


def label_rates(tx: pd.DataFrame, labels: pd.DataFrame) -> dict[str, np.ndarray]:
    """The terminal's fraud rate and label count among the labels arrived by each
    transaction's time (cumulative sums per terminal, looked up with merge_asof)."""
    lab = labels.sort_values("label_time_ms", kind="stable").copy()
    lab["n"] = lab.groupby("terminal_id").cumcount() + 1.0
    lab["frauds"] = lab.groupby("terminal_id")["is_fraud"].cumsum()
    lab = lab[["terminal_id", "label_time_ms", "n", "frauds"]]
    spine = tx[["terminal_id", "event_time_ms"]].reset_index()

    def as_of(shift_ms: int) -> pd.DataFrame:
        at = spine.assign(at=spine["event_time_ms"] - shift_ms).sort_values("at")
        got = pd.merge_asof(
            at, lab, left_on="at", right_on="label_time_ms", by="terminal_id"
        ).set_index("index")
        return got.reindex(tx.index)[["n", "frauds"]].fillna(0.0)

    now = as_of(0)
    out = {}
    for days in (1, 7, 30):
        before = as_of(days * DAY_MS)
        n = (now["n"] - before["n"]).to_numpy()
        frauds = (now["frauds"] - before["frauds"]).to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"terminal_risk__is_fraud_mean_{days}d"] = np.where(n > 0, frauds / n, np.nan)
        if days == 30:
            out["terminal_risk__count_30d"] = n
    return out


def haversine(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray:
    lat1, lon1, lat2, lon2 = (np.radians(v) for v in (lat1, lon1, lat2, lon2))
    h = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return np.asarray(2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def pandas_features(tx: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    f: dict[str, Any] = {}
    windows = {"1m": "1min", "5m": "5min", "1h": "1h", "1d": "1D", "7d": "7D", "30d": "30D"}
    for name, w in windows.items():
        f[f"card__count_{name}"] = np.nan_to_num(rolled(tx, "card_token", "amount", w, "count"))
        f[f"card__amount_sum_{name}"] = np.nan_to_num(rolled(tx, "card_token", "amount", w, "sum"))
    f["card__amount_mean_1d"] = rolled(tx, "card_token", "amount", "1D", "mean")
    f["card__amount_mean_30d"] = rolled(tx, "card_token", "amount", "30D", "mean")
    f["card__amount_std_30d"] = rolled(tx, "card_token", "amount", "30D", "std_pop")
    f["card__amount_max_7d"] = rolled(tx, "card_token", "amount", "7D", "max")
    f["card__latitude_mean_30d"] = rolled(tx, "card_token", "latitude", "30D", "mean")
    f["card__longitude_mean_30d"] = rolled(tx, "card_token", "longitude", "30D", "mean")
    last_ms = previous(tx, "card_token", "event_time_ms")
    since = tx["event_time_ms"].to_numpy() - last_ms
    recent = since <= 30 * DAY_MS
    f["card__latitude_last_30d"] = np.where(recent, previous(tx, "card_token", "latitude"), np.nan)
    f["card__longitude_last_30d"] = np.where(
        recent, previous(tx, "card_token", "longitude"), np.nan
    )
    f["card__time_since_last_30d"] = np.where(recent, since, np.nan)
    cnp = tx.assign(cnp=(tx["channel"] == "cnp").astype(np.float64))
    f["card__count_channel_cnp_1d"] = np.nan_to_num(rolled(cnp, "card_token", "cnp", "1D", "sum"))
    f["card__terminal_id_distinct_count_1d"] = np.nan_to_num(
        distinct_before(tx, "card_token", "terminal_id", "1D")
    )
    for name, w in (("1d", "1D"), ("7d", "7D"), ("30d", "30D")):
        f[f"terminal__count_{name}"] = np.nan_to_num(
            rolled(tx, "terminal_id", "amount", w, "count")
        )
    f.update(label_rates(tx, labels))
    device = tx.assign(card_device=tx["card_token"] + "|" + tx["device_id"].fillna(""))
    device.loc[tx["device_id"].isna(), "card_device"] = ""
    f["card_device__count_30d"] = np.nan_to_num(
        rolled(device, "card_device", "amount", "30D", "count")
    )
    amount = tx["amount"].to_numpy()
    ms = tx["event_time_ms"].to_numpy()
    f["tx_amount"] = amount
    f["log_amount"] = np.log1p(amount)
    f["hour_of_day"] = ((ms // HOUR_MS) % 24).astype(np.float64)
    f["is_weekend"] = (((ms // DAY_MS) + 3) % 7 >= 5).astype(np.float64)  # 1970-01-01: Thu
    f["card_not_present"] = (tx["channel"] == "cnp").to_numpy(dtype=np.float64)
    f["foreign_currency"] = (tx["currency"] == "USD").to_numpy(dtype=np.float64)
    f["tx_latitude"] = tx["latitude"].to_numpy(dtype=np.float64)
    f["tx_longitude"] = tx["longitude"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = f["card__amount_std_30d"]
        f["amount_zscore_30d"] = np.where(
            std > 0, (amount - f["card__amount_mean_30d"]) / std, np.nan
        )
        mean = f["card__amount_mean_1d"]
        f["amount_over_mean_1d"] = np.where(mean != 0, amount / mean, np.nan)
    f["km_from_usual_place"] = haversine(
        f["tx_latitude"], f["tx_longitude"], f["card__latitude_mean_30d"],
        f["card__longitude_mean_30d"],
    )  # fmt: skip
    f["km_from_last_place"] = haversine(
        f["tx_latitude"], f["tx_longitude"], f["card__latitude_last_30d"],
        f["card__longitude_last_30d"],
    )  # fmt: skip
    hours = np.maximum(f["card__time_since_last_30d"], 60_000.0) / HOUR_MS
    f["travel_kmh"] = f["km_from_last_place"] / hours
    return pd.DataFrame(f, index=tx.index)


def baseline(
    folder: Path, native_model: Path, output: str, label: str, *, per_row: bool = False
) -> pd.DataFrame:
    """The user's script: read, features, predict, to_sql (``per_row``: the model called
    row by row, as a script reusing a one-request ``predict`` does; 1 LightGBM thread,
    which is faster than every core for one row)."""
    import lightgbm as lgb

    tx = pd.read_parquet(folder / data.TRANSACTIONS_FILE)
    labels = pd.read_parquet(folder / data.LABELS_FILE)
    tx = tx.sort_values("event_time_ms", kind="stable").reset_index(drop=True)
    tx["time"] = pd.to_datetime(tx["event_time_ms"], unit="ms")
    features = pandas_features(tx, labels)
    booster = lgb.Booster(model_file=str(native_model))
    x = features[booster.feature_name()]
    if per_row:
        scores = np.array(
            [booster.predict(row.reshape(1, -1), num_threads=1)[0] for row in x.to_numpy()]
        )
    else:
        scores = booster.predict(x)
    out = pd.DataFrame(
        {"transaction_id": tx["transaction_id"], "event_time_ms": tx["event_time_ms"],
         "score": scores, "model_version": label}
    )  # fmt: skip
    with connection(output) as conn:
        out.to_sql("fraud_scores_baseline", conn, if_exists="append", index=False, chunksize=50_000)
    return out


@contextmanager
def connection(url: str) -> Iterator[Any]:
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            yield conn
            conn.commit()
        finally:
            conn.close()
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


# --- the online path, for identical_to_online ----------------------------------------


def online_scores(
    folder: Path, model: ServingModel, sample: int, workdir: Path
) -> dict[str, float]:
    """Scores of ``sample`` transactions spread over the input, each scored the way the
    service scores a request: online features with every earlier transaction and every
    label arrived by its time applied, then the service's scoring function."""
    inputs = read_inputs([folder])
    fs = fraud_feature_set()
    hist = data.histories(inputs.transactions, inputs.labels)
    tx = data.columns(hist["transactions"].drop_columns(["_partition", "_offset"]))
    labels = data.columns(inputs.labels.sort_by("label_time_ms"))
    label_times = np.asarray(labels["label_time_ms"], dtype=np.int64)
    n = len(tx["transaction_id"])
    picks = np.linspace(0, n - 1, min(sample, n)).astype(np.int64)
    engine = OnlineEngine(
        views=fs.views, store=EmbeddedStore(workdir / "online.db", snapshot_interval_s=math.inf)
    )
    scorer = TabularScorer(feature_set=fs, engine=engine, routing_key="card_token", learn=False)
    routing = Routing(champion=model)
    applied = fed = 0
    out: dict[str, float] = {}
    for i in picks.tolist():
        if i > applied:
            engine.apply_many({c: v[applied:i] for c, v in tx.items()}, topic="transactions")
            applied = i
        t = int(tx["event_time_ms"][i])
        upto = int(np.searchsorted(label_times, t, side="right"))
        if upto > fed:
            engine.apply_many({c: v[fed:upto] for c, v in labels.items()}, topic="labels")
            fed = upto
        engine.commit(0)
        one = {c: v[i : i + 1] for c, v in tx.items()}
        degraded: list[str] = []
        values = scorer.features(one, degraded)
        out[str(tx["transaction_id"][i])] = float(
            scorer.score(one, values, routing, degraded).scores[0]
        )
    engine.store.close()
    return out


def read_scores(url: str, table: str, key: str) -> dict[str, float]:
    with connection(url) as conn:
        if url.startswith("sqlite:///"):
            rows = conn.execute(f"SELECT {key}, score FROM {table}").fetchall()
        else:
            import sqlalchemy

            rows = conn.execute(sqlalchemy.text(f"SELECT {key}, score FROM {table}")).fetchall()
    return {str(k): float(s) for k, s in rows}


# --- the run ---------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    got = fn()
    return time.perf_counter() - started, got


@contextmanager
def databases(kind: str, root: Path) -> Iterator[Callable[[str], str]]:
    """A fresh database URL per name."""
    if kind == "sqlite":
        yield lambda name: f"sqlite:///{root / (name + '.db')}"
        return
    import psycopg

    from loopline.servers import postgres_server

    with postgres_server(root / "postgres") as server:

        def fresh(name: str) -> str:
            with psycopg.connect(server.url, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            return server.url.rsplit("/", 1)[0] + f"/{name}"

        yield fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sample", type=int, default=300, help="transactions replayed online")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-row-loop", dest="row_loop", action="store_false",
        help="skip the second baseline (the model called row by row)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/score.json")
    args = parser.parse_args()
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        say("training and registering the model ...")
        registry = Registry(root=root / "registry")
        train(TrainOptions(source="simulator", seed=5, customers=300, days=90,
                           out=root / "models", registry=registry, progress=False))  # fmt: skip
        pinned = registry.resolve("fraud", "champion")
        sim = simulate(profile("full", customers=args.customers, days=args.days), seed=args.seed)
        folder = root / "input"
        data.write(sim, folder)
        rows = sim.transactions.num_rows
        say(f"{rows:,} transactions, {args.repeats} repeats, {args.database}")
        times: dict[str, list[float]] = {"ours": [], "baseline": [], "row_loop": []}
        native = pinned.path / "model.txt"
        parts: list[dict[str, float]] = []
        with databases(args.database, root) as fresh:
            for r in range(args.repeats):
                url = fresh(f"ours_{r}")
                options = ScoreOptions(
                    inputs=[folder], output=url, registry=registry,
                    chunk_rows=args.chunk_rows, progress=False,
                )  # fmt: skip
                took, result = timed(lambda: run(options))  # noqa: B023
                assert result["stored"] == rows, result
                times["ours"].append(took)
                parts.append(result["timings_s"])
                burl = fresh(f"baseline_{r}")
                took, _ = timed(lambda: baseline(folder, native, burl, pinned.label))  # noqa: B023
                times["baseline"].append(took)
                if args.row_loop:
                    lurl = fresh(f"row_loop_{r}")
                    took, _ = timed(
                        lambda: baseline(folder, native, lurl, pinned.label, per_row=True)  # noqa: B023
                    )
                    times["row_loop"].append(took)
                say(
                    f"repeat {r + 1}: "
                    + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items() if v)
                )
            ours_scores = read_scores(url, "fraud_scores", "row_key")
            base_scores = read_scores(burl, "fraud_scores_baseline", "transaction_id")
        say(f"replaying {args.sample} transactions through the online path ...")
        online = online_scores(folder, load(pinned), args.sample, root)
    differ = [k for k, s in online.items() if ours_scores[k] != s]
    close = sum(abs(base_scores[k] - s) <= 1e-6 for k, s in ours_scores.items())
    ours, base = statistics.median(times["ours"]), statistics.median(times["baseline"])
    record: dict[str, Any] = {
        "rows": rows,
        "chunk_rows": args.chunk_rows,
        "database": args.database,
        "repeats": args.repeats,
        "seconds": round(ours, 3),
        "baseline_seconds": round(base, 3),
        "rows_per_s": round(rows / ours),
        "baseline_rows_per_s": round(rows / base),
        "ratio": round(base / ours, 2),
        "identical_to_online": not differ,
        "online_sample": len(online),
        "online_differing": len(differ),
        "online_max_abs_difference": max(abs(ours_scores[k] - s) for k, s in online.items()),
        "baseline_agreement": round(close / rows, 4),
        "ours_seconds_by_step": {
            k: round(statistics.median(p[k] for p in parts), 3) for k in parts[0]
        },
        "customers": args.customers,
        "days": args.days,
    }
    if times["row_loop"]:
        loop = statistics.median(times["row_loop"])
        record["row_loop_seconds"] = round(loop, 3)
        record["row_loop_rows_per_s"] = round(rows / loop)
        record["ratio_to_row_loop"] = round(loop / ours, 2)
    if args.save:
        from loopline.ops import save_result

        say(f"saved {save_result('score', record)}")
    if args.json:
        print(json.dumps(record))
        return
    for k, v in record.items():
        print(f"{k:>28}: {v}")


if __name__ == "__main__":
    main()
