"""The fraud model trained at a given moment on the newest mature data: the ``train`` step
of the retraining loop (:class:`loopline.feedback.retraining.RetrainingLoop`).

"Mature" means old enough for its labels to be in: transactions from ``maturity_days``
(the dispute window) before now and earlier, labelled with the labels that had arrived
by now (a fraud whose chargeback is still to come is left out, not called genuine). The
newest ``train_days`` of them train the model; the ``validation_days`` before those
choose its thresholds and give the drift reference (out of sample, so its scores are the
ones the model gives live).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopline.apps.fraud.datasets import Dataset
from loopline.apps.fraud.features import fraud_feature_set
from loopline.apps.fraud.train import (
    REVIEW_PRECISION,
    TrainOptions,
    reference_sample,
    register,
    serving_meta,
)
from loopline.exceptions import ConfigError
from loopline.monitoring import REFERENCE_FILE
from loopline.registry import ModelVersion, Registry
from loopline.training import (
    BoostingConfig,
    TimeSplit,
    at_threshold,
    bundle,
    ranking,
    threshold_for_precision,
    train,
)
from loopline.units import DAY_MS


@dataclass(frozen=True)
class History:
    """Every transaction's point-in-time features and the label stream by arrival.

    A row's features use only what came before it (labels included, by their arrival),
    so they are computed once, offline, for a whole run, and each training takes the
    rows that had matured by its time."""

    features: pa.Table
    names: list[str]
    labels: pa.Table

    @classmethod
    def of(cls, histories: dict[str, pa.Table]) -> History:
        fs = fraud_feature_set()
        return cls(fs.offline(histories, histories["transactions"]), fs.names, histories["labels"])


def train_at(
    history: History,
    now_ms: int,
    *,
    registry: Registry,
    maturity_days: float = 7.0,
    train_days: int = 21,
    validation_days: int = 7,
    precision_target: float = 0.9,
    config: BoostingConfig | None = None,
    seed: int = 0,
) -> ModelVersion:
    """Train on the data matured by ``now_ms``, check the ONNX export, register it (the
    first version ``champion``, later ones ``challenger``)."""
    end = now_ms - int(maturity_days * DAY_MS)
    split = TimeSplit(
        start_ms=end - train_days * DAY_MS,
        train_days=train_days,
        validation_days=validation_days,
        delay_days=0,
        test_days=0,
    )
    table = history.features
    times = table["event_time_ms"].to_numpy()
    parts = split.masks(times)
    known = history.labels.filter(pc.less_equal(history.labels["label_time_ms"], now_ms))
    where = pc.index_in(table["transaction_id"], value_set=known["transaction_id"])
    labelled = where.is_valid().to_numpy(zero_copy_only=False)
    rows = (parts["validation"] | parts["train"]) & labelled
    idx = where.filter(pa.array(rows)).to_numpy()
    y = (known["is_fraud"].to_numpy()[idx] >= 0.5).astype(np.int8)
    x = np.column_stack(
        [table[n].filter(pa.array(rows)).to_numpy(zero_copy_only=False) for n in history.names]
    ).astype(np.float64)
    ds = Dataset(
        x=x,
        y=y,
        names=history.names,
        parts={k: v[rows] for k, v in parts.items()},
        times=times[rows],
        lineage={
            "data.from_ms": str(split.start_ms - validation_days * DAY_MS),
            "data.until_ms": str(end),
            "labels.known_at_ms": str(now_ms),
        },
    )
    fit, val = ds.parts["train"], ds.parts["validation"]
    if ds.y[fit].sum() == 0 or ds.y[val].sum() == 0:
        raise ConfigError(
            f"No matured fraud label among the {int(fit.sum())} training or "
            f"{int(val.sum())} validation rows by {now_ms}: nothing to learn from yet."
        )
    config = config or BoostingConfig(seed=seed)
    booster = train(config, ds.x[fit], ds.y[fit], ds.names)
    p_val = np.asarray(booster.predict(ds.x[val]), dtype=np.float64)
    chosen = threshold_for_precision(ds.y[val], p_val, precision_target)
    review = threshold_for_precision(ds.y[val], p_val, REVIEW_PRECISION)
    op = at_threshold(ds.y[val], p_val, chosen.threshold)
    result: dict[str, Any] = {
        "train_rows": int(fit.sum()),
        "train_frauds": int(ds.y[fit].sum()),
        "validation_rows": int(val.sum()),
        **ranking(ds.y[val], p_val),
        "threshold": op.threshold,
        "review_threshold": min(review.threshold, op.threshold),
    }
    packed, result["onnx_max_abs_difference"] = bundle(
        booster,
        ds.x[val][:2000],
        meta=serving_meta(op, result, precision_target),
        extra={REFERENCE_FILE: reference_sample(ds, booster)},
    )
    options = TrainOptions(registry=registry, precision_target=precision_target, progress=False)
    return register(options, ds, config, result, packed, at_ms=now_ms)
