"""The online engine: updates entity tiles from micro-batches and serves reads.

``update_many`` takes a micro-batch as columns (NumPy arrays), drops late events (older
than the partition's watermark minus the view's allowed lateness: returned so that the
caller dead-letters them), groups the rest by (entity, tile) with one sort, computes
their partials with the kernel, merges them into the entity states and commits states
and checkpoint (consumer offsets, watermarks) to the store in one atomic step.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt

from loopline.events import TopicPartition
from loopline.exceptions import ConfigError
from loopline.features.base import OnlineStore, StateKey
from loopline.features.definitions import FeatureView
from loopline.features.kernel import Layout, finalize, layouts, merge_many, partials
from loopline.features.state import EntityState

_NO_WATERMARK = -(2**62)


class Checkpoint(msgspec.Struct):
    """What the engine commits with its states: next offsets and per-partition watermarks."""

    offsets: dict[str, int] = {}
    watermarks: dict[str, int] = {}


@dataclass(frozen=True, slots=True)
class FeatureValues:
    """One entity's features at ``as_of_ms``.

    Attributes:
        values: Feature name -> value (NaN where a window holds no event).
        freshness_ms: Event time of the newest event included, or None.
    """

    values: dict[str, float]
    as_of_ms: int
    freshness_ms: int | None

    @property
    def freshness_lag_ms(self) -> int | None:
        return None if self.freshness_ms is None else self.as_of_ms - self.freshness_ms


class OnlineEngine:
    """Keeps the online state of ``views`` in ``store``.

    Args:
        views: The feature views to maintain (each keeps its own versioned state).
        store: Where states and the checkpoint live.
    """

    def __init__(self, *, views: Sequence[FeatureView], store: OnlineStore) -> None:
        names = [v.name for v in views]
        if len(set(names)) != len(names):
            raise ConfigError(f"OnlineEngine got two views with one name: {sorted(names)}.")
        self.views = {v.name: v for v in views}
        self.store = store
        self._layouts = {v.name: layouts(v) for v in views}
        raw = store.checkpoint()
        self.checkpoint_ = msgspec.msgpack.decode(raw, type=Checkpoint) if raw else Checkpoint()

    def offset(self, tp: TopicPartition) -> int:
        """The next offset of ``tp`` to process (0 if none was)."""
        return self.checkpoint_.offsets.get(f"{tp.topic}/{tp.partition}", 0)

    def update_many(
        self,
        columns: Mapping[str, npt.NDArray[np.generic]],
        *,
        partition: int = 0,
        offsets: Mapping[TopicPartition, int] | None = None,
    ) -> dict[str, npt.NDArray[np.bool_]]:
        """Apply one micro-batch (in arrival order); return each view's late-event mask."""
        late_by_view: dict[str, npt.NDArray[np.bool_]] = {}
        changed: dict[StateKey, EntityState] = {}
        for view in self.views.values():
            late_by_view[view.name] = self._update_view(view, columns, partition, changed)
        for tp, offset in (offsets or {}).items():
            self.checkpoint_.offsets[f"{tp.topic}/{tp.partition}"] = offset
        self.store.commit(
            {key: state.encode() for key, state in changed.items()},
            msgspec.msgpack.encode(self.checkpoint_),
        )
        return late_by_view

    def _update_view(
        self,
        view: FeatureView,
        columns: Mapping[str, npt.NDArray[np.generic]],
        partition: int,
        changed: dict[StateKey, EntityState],
    ) -> npt.NDArray[np.bool_]:
        ts = np.asarray(columns[view.source.timestamp], dtype=np.int64)
        if len(ts) == 0:
            return np.zeros(0, dtype=bool)
        wm_key = f"{view.name}/{partition}"
        wm0 = self.checkpoint_.watermarks.get(wm_key, _NO_WATERMARK)
        before = np.maximum.accumulate(np.r_[wm0, ts[:-1]])
        late = ts < before - view.allowed_lateness_ms
        self.checkpoint_.watermarks[wm_key] = int(max(wm0, ts.max()))
        keep = ~late
        if not keep.any():
            return late
        keys = np.asarray(columns[view.entity.join_key])[keep]
        ts = ts[keep]
        cols = {c: np.asarray(columns[c])[keep] for c in view.columns}
        uniq, codes = np.unique(keys, return_inverse=True)
        states = {k: self._load(view, partition, str(k), changed) for k in uniq}
        for layout in self._layouts[view.name].values():
            self._apply(layout, uniq, codes, ts, cols, states)
        watermark = self.checkpoint_.watermarks[wm_key] - view.allowed_lateness_ms
        for layout in self._layouts[view.name].values():
            reach = max(f.tiles for f in view.features if f.hop_ms == layout.hop_ms)
            for state in states.values():
                state.prune(layout.hop_ms, watermark // layout.hop_ms - reach)
        return late

    def _load(
        self, view: FeatureView, partition: int, key: str, changed: dict[StateKey, EntityState]
    ) -> EntityState:
        skey = (view.version, partition, key)
        state = changed.get(skey)
        if state is None:
            (raw,) = self.store.get_many([skey])
            state = changed[skey] = EntityState.decode(raw) if raw else EntityState()
        return state

    @staticmethod
    def _apply(
        layout: Layout,
        uniq: npt.NDArray[np.generic],
        codes: npt.NDArray[np.intp],
        ts: npt.NDArray[np.int64],
        cols: Mapping[str, npt.NDArray[np.generic]],
        states: dict[object, EntityState],
    ) -> None:
        tiles = ts // layout.hop_ms
        order = np.lexsort((ts, tiles, codes))
        group = codes[order].astype(np.int64) * (1 << 40) + tiles[order]
        parts, sets = partials(layout, group, ts[order], {c: v[order] for c, v in cols.items()})
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        for run, i in enumerate(starts):
            key = uniq[codes[order[i]]]
            states[key].merge_tile(layout, int(tiles[order[i]]), parts[run], sets[run])

    def read(
        self, view_name: str, keys: Sequence[str], *, as_of_ms: int | None = None
    ) -> list[FeatureValues]:
        """The features of ``keys`` in view ``view_name`` at ``as_of_ms`` (default now)."""
        view = self.views[view_name]
        t = int(time.time() * 1000) if as_of_ms is None else as_of_ms
        partitions = self.store.partitions(view.version)
        out = []
        for key in keys:
            raws = self.store.get_many([(view.version, p, key) for p in partitions])
            states = [EntityState.decode(r) for r in raws if r is not None]
            out.append(self._values(view, states, t))
        return out

    def _values(self, view: FeatureView, states: list[EntityState], t: int) -> FeatureValues:
        values: dict[str, float] = {}
        newest = -np.inf
        for f in view.features:
            layout = self._layouts[view.name][f.hop_ms]
            head = t // f.hop_ms
            rows, sets = [], []
            for state in states:
                for tile, (partial, tile_sets) in state.tiles.get(f.hop_ms, {}).items():
                    if head - f.tiles < tile <= head:
                        rows.append(partial)
                        sets.append(tile_sets)
            merged = merge_many(layout, np.array(rows).reshape(len(rows), layout.width))
            distinct = None
            if f.aggregation.function == "distinct_count":
                i = layout.distinct.index(layout.aggregations.index(f.aggregation))
                distinct = set().union(*(s[i] for s in sets))
            values[f.name] = finalize(f, layout, merged, distinct, t)
            newest = max(newest, merged[-1])
        freshness = int(newest) if np.isfinite(newest) else None
        return FeatureValues(values, t, freshness)
