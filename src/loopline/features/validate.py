"""Online/offline consistency, measured: replay a stream through both engines and compare.

Sampled events are read online at the moment they are scored (every earlier event
applied, the event itself merged in), and computed offline from the full history as
their rows of a training set. The result is each feature's mismatch rate (Chronon's
consistency metric); 0 everywhere means no training/serving skew on that stream.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

from loopline.features.embedded import EmbeddedStore
from loopline.features.featureset import FeatureSet
from loopline.features.online import Columns, OnlineEngine


def same(a: float, b: float) -> bool:
    """Equal, NaN included; float sums to 1e-9 relative (summation order differs)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def mismatch_rates(online: dict[str, np.ndarray], offline: pa.Table) -> dict[str, float]:
    """Per feature, the fraction of rows where the two differ."""
    rates = {}
    for name, values in online.items():
        other = offline.column(name).to_numpy()
        bad = sum(not same(float(a), float(b)) for a, b in zip(values, other, strict=True))
        rates[name] = bad / max(1, len(values))
    return rates


def validate(
    feature_set: FeatureSet,
    events: Columns,
    *,
    sample: int = 1000,
    seed: int = 0,
    workdir: Path | None = None,
) -> dict[str, float]:
    """Mismatch rate per feature over ``sample`` events of ``events`` (in arrival order)."""
    n = len(next(iter(events.values())))
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        engine = OnlineEngine(
            views=feature_set.views,
            store=EmbeddedStore(Path(tmp) / "online.db", snapshot_interval_s=math.inf),
        )
        rows: dict[str, list[float]] = {name: [] for name in feature_set.names}
        applied = 0
        for i in picks.tolist():
            if i > applied:
                engine.apply_many({c: v[applied:i] for c, v in events.items()})
                applied = i
            one = feature_set.online(engine, {c: v[i : i + 1] for c, v in events.items()})
            for name, value in one.items():
                rows[name].append(float(value[0]))
        engine.store.close()
    history = pa.table(
        {
            **events,
            "_partition": np.zeros(n, dtype=np.int64),
            "_offset": np.arange(n),
            "_arrival_ms": np.asarray(_times(feature_set, events)),
        }
    )
    spine = pa.table(
        {
            **{c: np.asarray(v)[picks] for c, v in events.items()},
            "_partition": np.zeros(len(picks), dtype=np.int64),
            "_offset": picks,
        }
    )
    offline = feature_set.offline(history, spine)
    return mismatch_rates({k: np.array(v) for k, v in rows.items()}, offline)


def _times(feature_set: FeatureSet, events: Columns) -> np.ndarray:
    """Arrival times: each event arrives at the newest event time seen so far."""
    ts = np.asarray(events[feature_set.views[0].source.timestamp], dtype=np.int64)
    return np.maximum.accumulate(ts)
