"""The online engine: updates tiles from micro-batches and serves reads.

``update_many`` takes one micro-batch of one source partition as columns (NumPy arrays,
in arrival order). Per view it drops late events (older than the partition's watermark
minus the allowed lateness; the masks are returned so the caller dead-letters them),
groups the rest by (entity, tile) with one sort, computes their partials with the kernel
and merges them into the store's tile rings; then it commits the partition's state and
checkpoint (next offsets, watermarks) to the store in one atomic step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt

from loopline.events import TopicPartition
from loopline.exceptions import ConfigError
from loopline.features import rowread
from loopline.features.base import (
    ManyValues,
    ManyWindows,
    OnlineStore,
    Runs,
    Table,
    Window,
    WindowValue,
)
from loopline.features.definitions import Feature, FeatureView
from loopline.features.kernel import Layout, finalize, finalize_many, layouts, partials
from loopline.features.ring import combine

_NO_WATERMARK = -(2**62)
Columns = Mapping[str, npt.NDArray[np.generic]]


class Checkpoint(msgspec.Struct):
    """What the engine commits with a partition's state: next offsets and view watermarks."""

    offsets: dict[str, int] = {}
    watermarks: dict[str, int] = {}


@dataclass(frozen=True, slots=True)
class FeatureValues:
    """One entity's features at ``as_of_ms``.

    Attributes:
        values: Feature name -> value (NaN where a window holds no event; 0 for counts).
        as_of_ms: The read time.
        freshness_ms: Event time of the newest event included, or None.
    """

    values: dict[str, float]
    as_of_ms: int
    freshness_ms: int | None

    @property
    def freshness_lag_ms(self) -> int | None:
        return None if self.freshness_ms is None else self.as_of_ms - self.freshness_ms


@dataclass(frozen=True)
class _Group:
    """Features read from one window of one hop: one merge serves them all."""

    layout: Layout
    tiles: int
    features: tuple[Feature, ...]
    offsets: tuple[int, ...]  # where each feature's fields start in the partial
    distinct: tuple[int | None, ...]  # each feature's index among the layout's sets


class OnlineEngine:
    """Keeps the online state of ``views`` in ``store``.

    Every view given is maintained (each version has its own state); reads by name go to
    the version that name points at: the last one given for it, until :meth:`point`
    moves it. Keeping the previous version maintained makes rollback a re-pointing.

    Args:
        views: The feature views to maintain.
        store: Where tiles and checkpoints live.
    """

    def __init__(
        self,
        *,
        views: Sequence[FeatureView],
        store: OnlineStore,
        serving: Mapping[str, str] | None = None,
    ) -> None:
        versions = [v.version for v in views]
        if len(set(versions)) != len(versions):
            raise ConfigError("OnlineEngine got the same view version twice.")
        self.maintained = {v.version: v for v in views}
        self._serving = {v.name: v.version for v in views}
        for name, version in (serving or {}).items():
            self.point(name, version)
        self.store = store
        self._layouts = {v.version: layouts(v) for v in views}
        self._ring_sizes = {
            v.version: {
                hop: max(f.tiles for f in v.features if f.hop_ms == hop)
                for hop in self._layouts[v.version]
            }
            for v in views
        }
        self._groups = {v.version: self._read_groups(v) for v in views}
        self._plans = {
            v.version: rowread.plan(v, self._groups[v.version], self._ring_sizes[v.version])
            for v in views
        }
        self._checkpoints: dict[int, Checkpoint] = {}

    def _read_groups(self, view: FeatureView) -> list[_Group]:
        groups: dict[tuple[int, int], list[Feature]] = {}
        for f in view.features:
            groups.setdefault((f.hop_ms, f.tiles), []).append(f)
        out = []
        for (hop, tiles), feats in groups.items():
            layout = self._layouts[view.version][hop]
            index = [layout.aggregations.index(f.aggregation) for f in feats]
            out.append(
                _Group(
                    layout,
                    tiles,
                    tuple(feats),
                    tuple(layout.offsets[i] for i in index),
                    tuple(
                        layout.distinct.index(i) if i in layout.distinct else None for i in index
                    ),
                )
            )
        return out

    def view(self, view: str | FeatureView) -> FeatureView:
        """The maintained view: by name, the version the name points at."""
        version = self._serving.get(view) if isinstance(view, str) else view.version
        found = self.maintained.get(version or "")
        if found is None:
            raise ConfigError(
                f"View {view if isinstance(view, str) else view.name!r} (version {version}) is "
                f"not maintained by this engine; it keeps {sorted(self._serving)}."
            )
        return found

    def point(self, name: str, version: str) -> None:
        """Serve ``name`` from ``version`` (a maintained one): promotion and rollback."""
        view = self.maintained.get(version)
        if view is None or view.name != name:
            raise ConfigError(f"Version {version!r} of view {name!r} is not maintained here.")
        self._serving[name] = version

    @property
    def views(self) -> dict[str, FeatureView]:
        """Name -> the version served."""
        return {name: self.maintained[v] for name, v in self._serving.items()}

    def checkpoint(self, partition: int) -> Checkpoint:
        """The partition's checkpoint as of the last commit (and updates since)."""
        found = self._checkpoints.get(partition)
        if found is None:
            raw = self.store.checkpoint(partition)
            found = msgspec.msgpack.decode(raw, type=Checkpoint) if raw else Checkpoint()
            self._checkpoints[partition] = found
        return found

    def reload_checkpoints(self) -> None:
        """Read the checkpoints from the store again (an observer of partitions that
        other processes write)."""
        self._checkpoints.clear()

    def offset(self, tp: TopicPartition, view: FeatureView | None = None) -> int:
        """The next offset of ``tp`` that ``view`` needs (0 if none was processed); without a
        view, the lowest over the maintained views: where a worker must read from."""
        offsets = self.checkpoint(tp.partition).offsets
        views = [view] if view is not None else self.views_of(tp.topic)
        return min((offsets.get(f"{v.version}:{tp.topic}", 0) for v in views), default=0)

    def views_of(self, topic: str) -> list[FeatureView]:
        """The maintained views whose source is ``topic``."""
        return [v for v in self.maintained.values() if v.source.topic == topic]

    def update_many(
        self,
        columns: Columns,
        *,
        partition: int = 0,
        offsets: Mapping[TopicPartition, int] | None = None,
        topic: str | None = None,
    ) -> dict[str, npt.NDArray[np.bool_]]:
        """Apply and commit one micro-batch of one partition (to the views of ``topic``,
        default all); return each view's late mask."""
        late = self.apply_many(columns, partition=partition, topic=topic)
        self.commit(partition, offsets=offsets)
        return late

    def apply_many(
        self,
        columns: Columns,
        *,
        partition: int = 0,
        positions: tuple[str, npt.NDArray[np.int64]] | None = None,
        topic: str | None = None,
        views: Sequence[FeatureView] | None = None,
        late: npt.NDArray[np.bool_] | None = None,
    ) -> dict[str, npt.NDArray[np.bool_]]:
        """Apply one micro-batch of one partition, not yet durable; return the late masks.

        The batch goes to ``views``, else to the views whose source is ``topic`` (the one
        of ``positions``); with none of them, to every view. ``positions`` (topic, each
        row's log offset) lets each view skip the rows it has already applied: a version
        added later catches up from the start of the log while the others go on.

        ``late``: which rows are late, as :meth:`late_mask` found them in log order, for
        a batch applied in several calls out of log order (each entity's events still in
        order: see :class:`loopline.serving.stream.StreamScorer`).
        """
        checkpoint = self.checkpoint(partition)
        topic = positions[0] if positions is not None else topic
        if views is None:
            views = self.views_of(topic) if topic is not None else list(self.maintained.values())
        masks = {}
        for view in views:
            cols = columns
            if positions is not None:
                topic, offsets = positions
                fresh = offsets >= checkpoint.offsets.get(f"{view.version}:{topic}", 0)
                cols = (
                    columns
                    if fresh.all()
                    else {c: np.asarray(v)[fresh] for c, v in columns.items()}
                )
                mask = np.zeros(len(offsets), dtype=bool)
                given = None if late is None else late[fresh]
                mask[fresh] = self._update_view(view, cols, partition, checkpoint, given)
            else:
                mask = self._update_view(view, cols, partition, checkpoint, late)
            masks[f"{view.name}@{view.version}"] = mask
        return masks

    def late_mask(
        self, view: FeatureView, times_ms: npt.NDArray[np.int64], partition: int = 0
    ) -> npt.NDArray[np.bool_]:
        """Which of these events, in log order, ``view`` would find late: older than the
        newest event before them (this partition's watermark included) by more than its
        allowed lateness."""
        ts = np.asarray(times_ms, dtype=np.int64)
        wm0 = self.checkpoint(partition).watermarks.get(view.version, _NO_WATERMARK)
        before = np.maximum.accumulate(np.r_[wm0, ts[:-1]]) if len(ts) else ts
        return np.asarray(ts < before - view.allowed_lateness_ms)

    def commit(
        self, partition: int, *, offsets: Mapping[TopicPartition, int] | None = None
    ) -> None:
        """Make the partition's applied batches durable, with the offsets they reach."""
        checkpoint = self.checkpoint(partition)
        for tp, offset in (offsets or {}).items():
            if tp.partition != partition:
                raise ConfigError(f"commit(partition={partition}) got an offset for {tp}.")
            for v in self.views_of(tp.topic):
                key = f"{v.version}:{tp.topic}"
                checkpoint.offsets[key] = max(offset, checkpoint.offsets.get(key, 0))
        self.store.commit(partition, msgspec.msgpack.encode(checkpoint))

    def _update_view(
        self,
        view: FeatureView,
        columns: Columns,
        partition: int,
        checkpoint: Checkpoint,
        late: npt.NDArray[np.bool_] | None = None,
    ) -> npt.NDArray[np.bool_]:
        ts = np.asarray(columns[view.source.timestamp], dtype=np.int64)
        if len(ts) == 0:
            return np.zeros(0, dtype=bool)
        if late is None:
            late = self.late_mask(view, ts, partition)
        wm0 = checkpoint.watermarks.get(view.version, _NO_WATERMARK)
        checkpoint.watermarks[view.version] = int(max(wm0, ts.max()))
        keys = np.asarray(columns[view.entity.join_key])
        keep = ~late & (keys != "")  # an event without the entity's key belongs to none
        if not keep.any():
            return late
        keys = keys[keep]
        ts = ts[keep]
        cols = {c: np.asarray(columns[c])[keep] for c in view.columns}
        uniq, codes = np.unique(keys, return_inverse=True)
        order = np.lexsort((ts, codes))  # one sort per view: by entity, then time
        codes, ts = codes[order], ts[order]
        cols = {c: v[order] for c, v in cols.items()}
        new_entity = np.r_[True, codes[1:] != codes[:-1]]
        runs = []
        for hop, layout in self._layouts[view.version].items():
            tiles = ts // hop  # sorted within each entity, so runs are contiguous
            starts = np.flatnonzero(new_entity | np.r_[True, tiles[1:] != tiles[:-1]])
            parts, sets = partials(layout, starts, ts, cols)
            table = Table(view.version, hop, partition, layout, self._ring_sizes[view.version][hop])
            runs.append(Runs(table, codes[starts], tiles[starts], parts, sets))
        self.store.apply(uniq, runs)
        return late

    def read(
        self, view: str | FeatureView, keys: Sequence[str], *, as_of_ms: int | None = None
    ) -> list[FeatureValues]:
        """The features of ``keys`` in view ``view_name`` at ``as_of_ms`` (default now).

        Exact for reads at or after each entity's newest event (serving); past reads
        belong to the offline engine (see :mod:`loopline.features.ring`).
        """
        view = self.view(view)
        t = int(time.time() * 1000) if as_of_ms is None else as_of_ms
        return [self._row(view, key, t) for key in keys]

    @property
    def remote(self) -> bool:
        """Whether the store is a server (each read a round trip), not in this process."""
        return not hasattr(self.store, "locate")

    def read_many(
        self, view: str | FeatureView, keys: Sequence[str], times_ms: npt.ArrayLike
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Feature columns for many (key, read time) pairs at once: what :meth:`read` gives
        row by row (:meth:`read_views` of one view)."""
        return self.read_views([(view, keys, times_ms)])[0]

    def read_views(
        self, reads: Sequence[tuple[str | FeatureView, Sequence[str], npt.ArrayLike]]
    ) -> list[dict[str, npt.NDArray[np.float64]]]:
        """:meth:`read_many` of several views: ``(view, keys, read times)`` each, in one
        compiled pass per ring; on a remote store with ``read_views``, in one round trip
        for them all. Stores without ``read_many`` are read row by row, and so are fewer
        than four rows of a store in memory."""
        many = getattr(self.store, "read_many", None)
        in_memory = not self.remote
        out: list[dict[str, npt.NDArray[np.float64]]] = []
        batched: list[tuple[int, FeatureView, Sequence[str], npt.NDArray[np.int64]]] = []
        for i, (name, keys, times_ms) in enumerate(reads):
            view, times = self.view(name), np.asarray(times_ms, dtype=np.int64)
            if many is None or (len(keys) < 4 and in_memory):  # a few rows: the row path
                out.append(self._rows(view, keys, times))
            else:
                out.append({})
                batched.append((i, view, keys, times))
        if not batched:
            return out
        asked = [
            (view.version, keys, self._many_windows(view, times))
            for _, view, keys, times in batched
        ]
        together = getattr(self.store, "read_views", None)
        found = together(asked) if together else [many(*a) for a in asked]  # type: ignore[misc]
        for (i, view, _, times), values in zip(batched, found, strict=True):
            out[i] = self._finish_many(view, values, times)
        return out

    def _rows(
        self, view: FeatureView, keys: Sequence[str], times: npt.NDArray[np.int64]
    ) -> dict[str, npt.NDArray[np.float64]]:
        rows = np.array(
            [self._row_array(view, k, t) for k, t in zip(keys, times.tolist(), strict=True)]
        ).reshape(len(keys), len(view.features))
        return {f.name: rows[:, i] for i, f in enumerate(view.features)}

    def _many_windows(self, view: FeatureView, times: npt.NDArray[np.int64]) -> list[ManyWindows]:
        return [
            ManyWindows(g.layout.hop_ms, g.layout, times // g.layout.hop_ms, g.tiles)
            for g in self._groups[view.version]
        ]

    def _finish_many(
        self, view: FeatureView, found: Sequence[ManyValues], times: npt.NDArray[np.int64]
    ) -> dict[str, npt.NDArray[np.float64]]:
        out: dict[str, npt.NDArray[np.float64]] = {}
        for g, (merged, sets) in zip(self._groups[view.version], found, strict=True):
            for f, off, d in zip(g.features, g.offsets, g.distinct, strict=True):
                distinct = None if d is None or sets is None else [s[d] for s in sets]
                out[f.name] = finalize_many(f, off, merged, distinct, times)
        return out

    def read_event(self, view: str | FeatureView, event: Columns) -> FeatureValues:
        """The features of one incoming event's entity at the event's time, including the
        event itself (merged through the same kernel), before it is ingested: what the
        offline engine computes for that event's row of history."""
        view = self.view(view)
        key = str(np.asarray(event[view.entity.join_key])[0])
        ts = np.asarray(event[view.source.timestamp], dtype=np.int64)[:1]
        cols = {c: np.asarray(event[c])[:1] for c in view.columns}
        own = (ts, cols) if key != "" else None  # no key: the event belongs to no entity
        return self._values(view, key, int(ts[0]), own=own)

    def _row(self, view: FeatureView, key: str, t: int) -> FeatureValues:
        """One entity's features: the compiled row path where the store has one."""
        found = rowread.read_row(self.store, view, self._plans[view.version], key, t)
        if found is None:
            return self._values(view, key, t)
        values, newest = found
        return FeatureValues(
            dict(zip((f.name for f in view.features), values.tolist(), strict=True)),
            t,
            int(newest) if math.isfinite(newest) else None,
        )

    def _row_array(self, view: FeatureView, key: str, t: int) -> npt.NDArray[np.float64]:
        """:meth:`_row`'s values alone, in ``view.features`` order."""
        found = rowread.read_row(self.store, view, self._plans[view.version], key, t)
        if found is not None:
            return found[0]
        values = self._values(view, key, t).values
        return np.array([values[f.name] for f in view.features])

    def _values(
        self,
        view: FeatureView,
        key: str,
        t: int,
        own: tuple[npt.NDArray[np.int64], Columns] | None = None,
    ) -> FeatureValues:
        groups = self._groups[view.version]
        windows = [Window(g.layout.hop_ms, g.layout, t // g.layout.hop_ms, g.tiles) for g in groups]
        values: dict[str, float] = {}
        newest = -math.inf
        for g, found in zip(groups, self.store.read(view.version, key, windows), strict=True):
            merged, sets = found if own is None else _with_own(g.layout, found, *own)
            for f, off, d in zip(g.features, g.offsets, g.distinct, strict=True):
                distinct = None if d is None else sets[d]
                values[f.name] = finalize(f, g.layout, merged, distinct, t, off)
            newest = max(newest, float(merged[-1]))
        return FeatureValues(values, t, int(newest) if math.isfinite(newest) else None)


def _with_own(
    layout: Layout, found: WindowValue, ts: npt.NDArray[np.int64], cols: Columns
) -> WindowValue:
    part, sets = partials(layout, np.zeros(1, dtype=np.intp), ts, cols)
    return combine(layout, [found, (part[0], sets[0] if sets else [])])
