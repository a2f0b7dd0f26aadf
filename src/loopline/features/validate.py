"""Online/offline consistency, measured: replay a stream through both engines and compare.

Sampled events are read online at the moment they are scored (every earlier event
applied, the event itself merged in), and computed offline from the full history as
their rows of a training set. The result is each feature's mismatch rate (Chronon's
consistency metric); 0 everywhere means no training/serving skew on that stream.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from loopline.features.base import OnlineStore
from loopline.features.definitions import Source
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
        column = offline.column(name).combine_chunks()
        if np.ndim(values) == 2:  # a vector or list feature: a row differs if any item does
            other = column.flatten().to_numpy().reshape(len(values), -1)
            bad = sum(
                not all(same(float(a), float(b)) for a, b in zip(x, y, strict=True))
                for x, y in zip(values, other, strict=True)
            )
        else:
            other = column.to_numpy()
            bad = sum(not same(float(a), float(b)) for a, b in zip(values, other, strict=True))
        rates[name] = bad / max(1, len(values))
    return rates


def validate(
    feature_set: FeatureSet,
    events: Columns | Mapping[str, Columns],
    *,
    sample: int = 1000,
    seed: int = 0,
    workdir: Path | None = None,
    store: OnlineStore | None = None,
) -> dict[str, float]:
    """Mismatch rate per feature over ``sample`` scored events.

    The online engine keeps its state in ``store`` (default: an embedded store in a
    temporary folder); give an empty one, such as a fresh Redis database.

    ``events`` holds the scored source's events in arrival order, or maps each source's
    name to its events when the views read several (e.g. transactions and late labels);
    the others arrive at their own timestamps, in that order.
    """
    source = feature_set.source
    streams: dict[str, Columns] = (
        {name: cols for name, cols in events.items() if isinstance(cols, Mapping)}
        if all(isinstance(v, Mapping) for v in events.values())
        else {source.name: events}  # type: ignore[dict-item]
    )
    scored = streams[source.name]
    others = {v.source.name: v.source for v in feature_set.views if v.source != source}
    n = len(next(iter(scored.values())))
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    times = np.asarray(scored[source.timestamp], dtype=np.int64)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        if store is None:
            store = EmbeddedStore(Path(tmp) / "online.db", snapshot_interval_s=math.inf)
        engine = OnlineEngine(views=feature_set.views, store=store)
        feeds = [_Feed(engine, streams[name], s) for name, s in others.items()]
        rows: dict[str, list[float]] = {name: [] for name in feature_set.names}
        applied = 0
        for i in picks.tolist():
            if i > applied:
                engine.apply_many({c: v[applied:i] for c, v in scored.items()}, topic=source.topic)
                applied = i
            for feed in feeds:
                feed.until(int(times[i]))
            engine.commit(0)  # what a remote store serves is what was committed
            one = feature_set.online(engine, {c: v[i : i + 1] for c, v in scored.items()})
            for name, value in one.items():
                rows[name].append(float(value[0]))
        engine.store.close()
    history = pa.table(
        {
            **scored,
            "_partition": np.zeros(n, dtype=np.int64),
            "_offset": np.arange(n),
            "_arrival_ms": np.maximum.accumulate(times),  # each arrives at the newest time yet
        }
    )
    spine = pa.table(
        {
            **{c: np.asarray(v)[picks] for c, v in scored.items()},
            "_partition": np.zeros(len(picks), dtype=np.int64),
            "_offset": picks,
        }
    )
    histories = {source.name: history, **{name: pa.table(streams[name]) for name in others}}
    offline = feature_set.offline(histories, spine)
    return mismatch_rates({k: np.array(v) for k, v in rows.items()}, offline)


class _Feed:
    """Another source's events, applied up to a time: they arrive at their timestamps."""

    def __init__(self, engine: OnlineEngine, columns: Columns, source: Source) -> None:
        self.engine, self.columns, self.source = engine, columns, source
        self.times = np.asarray(columns[source.timestamp], dtype=np.int64)
        self.applied = 0

    def until(self, t: int) -> None:
        end = int(np.searchsorted(self.times, t, side="right"))
        if end > self.applied:
            batch = {c: np.asarray(v)[self.applied : end] for c, v in self.columns.items()}
            self.engine.apply_many(batch, topic=self.source.topic)
            self.applied = end
