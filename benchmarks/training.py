"""Fraud training benchmark: simulator speed, training time on 1M transactions, quality.

    loopline bench training [--quality] [--seeds N] [--json]

* ``simulator_tx_per_s``: the handbook profile (5,000 customers, 10,000 terminals, 183
  days), median of 3 generations (target >= 500,000);
* ``train_1m_s``: point-in-time features (the fraud feature set, 44 columns) for the
  newest 1,000,000 transactions of a simulated history plus LightGBM on them, on this
  machine's 2 cores (target <= 120 s); the baseline in the same run is the LightGBM fit
  alone, so the split between features and fitting shows;
* with ``--quality``: ``loopline train fraud`` on the handbook profile over ``--seeds``
  seeds (medians, with the handbook's logistic regression on the same data), on ULB, and
  on the full simulator (recall at precision 0.99 per scenario).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from loopline.apps.fraud import data, fraud_feature_set
from loopline.apps.fraud.simulator import profile, simulate
from loopline.apps.fraud.train import TrainOptions, run
from loopline.registry import Registry
from loopline.training import BoostingConfig, train


def simulator_speed() -> dict[str, Any]:
    rates = []
    for seed in range(3):
        started = time.perf_counter()
        n = simulate("handbook", seed=seed).transactions.num_rows
        rates.append(n / (time.perf_counter() - started))
    return {"simulator_tx_per_s": round(statistics.median(rates)), "simulator_rows": n}


def train_1m(rows: int = 1_000_000) -> dict[str, Any]:
    sim = simulate(profile("full", customers=10_000, terminals=20_000, days=100), seed=0)
    histories = data.histories(sim.transactions, sim.labels)
    tx = histories["transactions"]
    spine = tx.slice(tx.num_rows - rows)
    fs = fraud_feature_set()
    started = time.perf_counter()
    table = fs.offline(histories, spine)
    x = np.column_stack([table[n].to_numpy(zero_copy_only=False) for n in fs.names])
    y = table["is_fraud"].to_numpy()
    features_s = time.perf_counter() - started
    started = time.perf_counter()
    train(BoostingConfig(), x, y, fs.names)
    fit_s = time.perf_counter() - started
    return {
        "train_rows": rows,
        "history_rows": tx.num_rows,
        "features_s": round(features_s, 1),
        "fit_s": round(fit_s, 1),
        "train_1m_s": round(features_s + fit_s, 1),
    }


def quality(seeds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        registry = Registry(root=Path(tmp) / "registry")

        def train_on(source: str, seed: int = 0) -> dict[str, Any]:
            options = TrainOptions(
                source=source,  # type: ignore[arg-type]
                seed=seed,
                out=Path(tmp) / "models",
                registry=registry,
                progress=False,
            )
            return run(options)

        handbook = [train_on("handbook", s) for s in range(seeds)]
        for key in ("roc_auc", "average_precision", "card_precision_at_100"):
            out[f"handbook_{key}"] = round(statistics.median(r[key] for r in handbook), 3)
            out[f"handbook_lr_{key}"] = round(
                statistics.median(r["logistic_regression"][key] for r in handbook), 3
            )
        out["handbook_per_seed"] = [
            {k: round(r[k], 3) for k in ("roc_auc", "average_precision", "card_precision_at_100")}
            | {f"lr_{k}": round(v, 3) for k, v in r["logistic_regression"].items()}
            for r in handbook
        ]
        ulb = train_on("ulb")
        out["ulb_average_precision"] = round(ulb["average_precision"], 3)
        out["ulb_roc_auc"] = round(ulb["roc_auc"], 3)
        full = train_on("simulator")
        for key in (
            "roc_auc",
            "average_precision",
            "recall_at_precision_99",
            "precision_at_recall_95",
            "card_precision_at_100",
        ):
            out[f"simulator_{key}"] = round(full[key], 3)
        out["simulator_recall_by_scenario"] = full["recall_by_scenario"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", action="store_true", help="also train on every source")
    parser.add_argument("--seeds", type=int, default=5, help="handbook seeds (--quality)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "training", **simulator_speed(), **train_1m()}
    if args.quality:
        result.update(quality(args.seeds))
    if args.json:
        print(json.dumps(result))
        return
    table = Table(title="fraud training")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    targets = {
        "simulator_tx_per_s": ">= 500,000",
        "train_1m_s": "<= 120",
        "handbook_roc_auc": "> 0.871",
        "handbook_average_precision": "> 0.658",
        "handbook_card_precision_at_100": "> 0.291",
        "handbook_lr_roc_auc": "~ 0.871",
        "handbook_lr_average_precision": "~ 0.606",
        "handbook_lr_card_precision_at_100": "~ 0.291",
        "ulb_average_precision": ">= 0.80",
    }
    for key, value in result.items():
        if key != "benchmark":
            shown = f"{value:,}" if isinstance(value, int) else json.dumps(value)
            table.add_row(key, shown, targets.get(key, ""))
    Console().print(table)


if __name__ == "__main__":
    main()
