"""The fraud model's latency, quality and cost levers, each setting trained and measured
(``loopline bench pareto fraud``).

Levers: model size (trees and leaves per tree), feature-set size (the teacher's top
features by gain), batching (rows per ONNX Runtime call), and distilled students (a small
model fitted to the large teacher's log-odds, :func:`loopline.training.distill.distill`)
against the same small model fitted to the labels alone.

Every model is scored as served: bundled (its ONNX export, checked against LightGBM) and
loaded the way serving loads a version (ONNX Runtime, one thread, LightGBM behind it),
one call per request (or per batch); quality is measured with the same loaded model on
the held-out test days. Data: the ``full`` simulator profile at a reduced scale (the
training split of ``loopline train fraud``: 21 days train, 14 days delay, 14 days test).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from loopline.apps.fraud.datasets import Dataset, simulated_dataset, simulator_split
from loopline.apps.fraud.simulator import profile
from loopline.ops import Point, Prices, candidate_model, cost_per_million, time_calls
from loopline.training import (
    BoostingConfig,
    at_threshold,
    bundle,
    distill,
    ranking,
    threshold_for_precision,
    train,
)

F64 = npt.NDArray[np.float64]
Say = Callable[[str], None]
TEACHER = (400, 31)  # trees, leaves: the production configuration (BoostingConfig())
SIZES = ((100, 31), (25, 31), (400, 7), (100, 7), (25, 7))
TOP_FEATURES = (5, 10, 20)
BATCHES = (8, 32, 128)
STUDENTS = ((25, 7), (100, 7))


@dataclass(frozen=True, kw_only=True)
class SweepOptions:
    """The data scale and how many calls each point is timed over."""

    customers: int = 2_000
    days: int = 90
    seed: int = 0
    calls: int = 3_000
    precision_target: float = 0.9
    unlabelled: bool = True  # also distil on a second simulation's rows, labels unused


def config_of(trees: int, leaves: int) -> BoostingConfig:
    """The production configuration resized: fewer trees take larger steps (learning
    rate 0.03 x 400 / trees, at most 0.3) so a small model is not merely undertrained."""
    rate = min(0.3, 0.03 * TEACHER[0] / trees)
    return replace(BoostingConfig(), num_boost_round=trees, num_leaves=leaves, learning_rate=rate)


@dataclass
class _Bench:
    ds: Dataset
    options: SweepOptions
    prices: Prices
    say: Say

    def rows(self, part: str, columns: list[int] | None = None) -> F64:
        x = self.ds.x[self.ds.parts[part]]
        return x if columns is None else x[:, columns]

    def point(
        self,
        name: str,
        lever: str,
        booster: lgb.Booster,
        settings: Mapping[str, object],
        *,
        columns: list[int] | None = None,
        batch: int = 1,
    ) -> Point:
        """Bundle ``booster`` (ONNX, parity-checked) and load it as serving does; score
        validation and test with it, time it."""
        self.say(f"measuring {name}")
        validation, test = self.rows("validation", columns), self.rows("test", columns)
        packed, _ = bundle(booster, validation[:2000])
        model = candidate_model("pareto", packed)

        def predict(x: F64) -> F64:
            return model.predict(x)[0]

        p_val, p_test = predict(validation), predict(test)
        quality = self.quality(p_val, p_test)
        calls = self.options.calls if batch == 1 else max(200, self.options.calls // 4)
        starts = np.random.default_rng(0).integers(0, len(test) - batch, calls)
        timing = time_calls(
            lambda i: predict(test[starts[i] : starts[i] + batch]),
            calls=calls,
            per_call=batch,
        )
        return Point(
            name=name,
            lever=lever,
            settings={**settings, "batch": batch},
            latency_p50_ms=timing.p50_ms,
            latency_p99_ms=timing.p99_ms,
            quality=quality.pop("average_precision"),
            cost_per_million=cost_per_million(timing.cpu_s_per_prediction, self.prices),
            figures=quality | {"cpu_us_per_prediction": timing.cpu_s_per_prediction * 1e6},
        )

    def quality(self, p_val: F64, p_test: F64) -> dict[str, float]:
        """Average precision on test; recall and precision there at the threshold chosen
        on validation for the precision target (as ``loopline train fraud`` does)."""
        y_val, y_test = self.ds.y[self.ds.parts["validation"]], self.ds.y[self.ds.parts["test"]]
        chosen = threshold_for_precision(y_val, p_val, self.options.precision_target)
        op = at_threshold(y_test, p_test, chosen.threshold)
        got = ranking(y_test, p_test)
        return {
            "average_precision": got["average_precision"],
            "roc_auc": got["roc_auc"],
            "recall_at_target": op.recall,
            "precision_at_target": op.precision,
        }

    def fit(self, trees: int, leaves: int, columns: list[int] | None = None) -> lgb.Booster:
        names = self.ds.names if columns is None else [self.ds.names[c] for c in columns]
        self.say(f"training {trees} trees x {leaves} leaves on {len(names)} features")
        x, y = self.rows("train", columns), self.ds.y[self.ds.parts["train"]]
        return train(config_of(trees, leaves), x, y, names)


def sweep(options: SweepOptions, prices: Prices, say: Say = lambda _: None) -> dict[str, Any]:
    """Every lever's points, and the distillation comparison."""
    say(f"simulating {options.customers:,} customers x {options.days} days and their features")
    p = profile("full", customers=options.customers, days=options.days)
    ds = simulated_dataset(p, simulator_split(p), options.seed)
    bench = _Bench(ds, options, prices, say)
    teacher = bench.fit(*TEACHER)
    size = {"trees": TEACHER[0], "leaves": TEACHER[1], "features": len(ds.names)}
    points = [bench.point(f"teacher {TEACHER[0]}x{TEACHER[1]}", "size", teacher, size)]
    for trees, leaves in SIZES:
        booster = bench.fit(trees, leaves)
        settings = size | {"trees": trees, "leaves": leaves}
        points.append(bench.point(f"trees {trees}x{leaves}", "size", booster, settings))
    gains = teacher.feature_importance(importance_type="gain")
    for k in TOP_FEATURES:
        columns = sorted(np.argsort(-gains)[:k].tolist())
        booster = bench.fit(*TEACHER, columns)
        settings = size | {"features": k}
        points.append(
            bench.point(f"top {k} features", "features", booster, settings, columns=columns)
        )
    for b in BATCHES:
        points.append(bench.point(f"batch {b}", "batching", teacher, size, batch=b))
    distilled, summary = _students(bench, teacher, points)
    return {"points": points + distilled, "distillation": summary, "data": _data(ds, options)}


def _students(
    bench: _Bench, teacher: lgb.Booster, points: list[Point]
) -> tuple[list[Point], dict[str, Any]]:
    """Students distilled from the teacher's scores on the training rows (and, with
    ``unlabelled``, on a second simulation's rows too), against the same sizes trained
    on the labels (the ``size`` points)."""
    ds, opts = bench.ds, bench.options
    x = bench.rows("train")
    extra = np.zeros((0, x.shape[1]))
    if opts.unlabelled:
        bench.say("simulating unlabelled rows for the students (a second seed)")
        p = profile("full", customers=opts.customers, days=opts.days)
        other = simulated_dataset(p, simulator_split(p), opts.seed + 1)
        extra = other.x[other.parts["train"]]
    out, summary = [], {}
    teacher_test = np.asarray(teacher.predict(bench.rows("test")), dtype=np.float64)
    for trees, leaves in STUDENTS:
        labelled = next(q for q in points if q.name == f"trees {trees}x{leaves}")
        row: dict[str, Any] = {"labels_only": _summary(labelled)}
        for name, rows in (("distilled", x), ("distilled_unlabelled", np.vstack([x, extra]))):
            if name == "distilled_unlabelled" and not len(extra):
                continue
            bench.say(f"distilling a {trees}x{leaves} student on {len(rows):,} rows")
            student = distill(teacher.predict(rows), rows, ds.names, config_of(trees, leaves))
            settings = {"trees": trees, "leaves": leaves, "student_rows": len(rows)}
            label = f"student {trees}x{leaves}" + (" +unlabelled" if "unl" in name else "")
            point = bench.point(label, "distillation", student, settings)
            agreement = _spearman(np.asarray(student.predict(bench.rows("test"))), teacher_test)
            point = replace(point, figures={**point.figures, "teacher_spearman": agreement})
            out.append(point)
            row[name] = _summary(point)
        row["ap_gain_over_labels"] = row["distilled"]["average_precision"] - labelled.quality
        summary[f"{trees}x{leaves}"] = row
    teacher_point = points[0]
    summary["teacher"] = _summary(teacher_point)
    return out, summary


def _summary(p: Point) -> dict[str, float]:
    return {
        "average_precision": round(p.quality, 4),
        "recall_at_target": round(p.figures["recall_at_target"], 4),
        "latency_p50_ms": float(f"{p.latency_p50_ms:.4g}"),
        "cost_per_million": float(f"{p.cost_per_million:.4g}"),
    }


def _spearman(a: F64, b: F64) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _data(ds: Dataset, options: SweepOptions) -> dict[str, Any]:
    return {
        "profile": "full",
        "customers": options.customers,
        "days": options.days,
        "seed": options.seed,
        "features": len(ds.names),
        **{f"{k}_rows": int(v.sum()) for k, v in ds.parts.items()},
        "test_frauds": int(ds.y[ds.parts["test"]].sum()),
        "precision_target": options.precision_target,
    }
