"""The online engine: updates tiles from micro-batches (its reads: :mod:`.reads`).

``update_many`` takes one micro-batch of one source partition as columns (NumPy arrays,
in arrival order). Per view it drops late events (older than the partition's watermark
minus the allowed lateness; the masks are returned so the caller dead-letters them),
groups the rest by (entity, tile) with one sort, computes their partials with the kernel
and merges them into the store's tile rings (``last_n`` aggregations: each accepted event
into its entity's list ring, :mod:`loopline.features.lists`); then it commits the
partition's state and checkpoint (next offsets, watermarks) to the store in one atomic step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from loopline.events import TopicPartition
from loopline.exceptions import ConfigError
from loopline.features import rowread
from loopline.features.base import BatchReads, OnlineStore, RingReads, Runs, Table
from loopline.features.definitions import FeatureView
from loopline.features.distinct import NO_CODES
from loopline.features.kernel import layouts, partials
from loopline.features.lists import list_layouts, list_parts
from loopline.features.reads import Columns, FeatureValues, OnlineReads, read_groups
from loopline.units import MINUTE_MS

_NO_WATERMARK = -(2**62)
__all__ = ["Checkpoint", "Columns", "FeatureValues", "OnlineEngine"]


class Checkpoint(msgspec.Struct):
    """What the engine commits with a partition's state: next offsets, view watermarks,
    and for views with ``last_n`` lists the next log position to number events with
    when a batch comes without offsets."""

    offsets: dict[str, int] = {}
    watermarks: dict[str, int] = {}
    positions: dict[str, int] = {}


class OnlineEngine(OnlineReads):
    """Keeps the online state of ``views`` in ``store``.

    Every view given is maintained (each version has its own state); reads by name go to
    the version that name points at: the last one given for it, until :meth:`point`
    moves it. Keeping the previous version maintained makes rollback a re-pointing.

    Not thread-safe: one thread at a time reads and applies (the serving kernel keeps it
    on its event loop, or on one offload thread); an application calling it from a pool
    of threads must hold a lock around each call.

    Args:
        views: The feature views to maintain.
        store: Where tiles and checkpoints live.
        clock: Seconds since 1970 (a simulation's clock, or the wall clock).
        max_ahead_ms: How far an event's time may be ahead of ``clock``: one further
            ahead is refused like a late one (and dead-lettered by the caller), so it
            cannot move the watermark into the future and make every real event late.
    """

    def __init__(
        self,
        *,
        views: Sequence[FeatureView],
        store: OnlineStore,
        serving: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        max_ahead_ms: int = 5 * MINUTE_MS,
    ) -> None:
        versions = [v.version for v in views]
        if len(set(versions)) != len(versions):
            raise ConfigError("OnlineEngine got the same view version twice.")
        self.maintained = {v.version: v for v in views}
        self._serving = {v.name: v.version for v in views}
        for name, version in (serving or {}).items():
            self.point(name, version)
        self.store = store
        self.clock = clock
        self.max_ahead_ms = max_ahead_ms
        self._batches = store if isinstance(store, BatchReads) else None
        self._rings = store if isinstance(store, RingReads) else None
        self._layouts = {v.version: layouts(v) for v in views}
        self._ring_sizes = {
            v.version: {
                hop: max(f.tiles for f in v.features if f.hop_ms == hop)
                for hop in self._layouts[v.version]
            }
            for v in views
        }
        self._lists = {v.version: list_layouts(v) for v in views}
        self._groups = {
            v.version: read_groups(v, self._layouts[v.version], self._lists[v.version])
            for v in views
        }
        self._plans = {
            v.version: rowread.plan(v, self._groups[v.version], self._ring_sizes[v.version])
            for v in views
        }
        self._checkpoints: dict[int, Checkpoint] = {}

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
                at = np.asarray(offsets, dtype=np.int64)[fresh]
                mask[fresh] = self._update_view(view, cols, partition, checkpoint, given, at)
            else:
                mask = self._update_view(view, cols, partition, checkpoint, late)
            masks[f"{view.name}@{view.version}"] = mask
        return masks

    def late_mask(
        self, view: FeatureView, times_ms: npt.NDArray[np.int64], partition: int = 0
    ) -> npt.NDArray[np.bool_]:
        """Which of these events, in log order, ``view`` refuses: older than the newest
        accepted event before them (this partition's watermark included) by more than
        its allowed lateness, or ahead of the clock by more than ``max_ahead_ms``."""
        ts = np.asarray(times_ms, dtype=np.int64)
        ahead = ts > int(self.clock() * 1000) + self.max_ahead_ms
        wm0 = self.checkpoint(partition).watermarks.get(view.version, _NO_WATERMARK)
        seen = np.where(ahead, _NO_WATERMARK, ts)  # a refused event moves no watermark
        before = np.maximum.accumulate(np.r_[wm0, seen[:-1]]) if len(ts) else ts
        return np.asarray((ts < before - view.allowed_lateness_ms) | ahead)

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
        offsets: npt.NDArray[np.int64] | None = None,
    ) -> npt.NDArray[np.bool_]:
        ts = np.asarray(columns[view.source.timestamp], dtype=np.int64)
        if len(ts) == 0:
            return np.zeros(0, dtype=bool)
        positions = self._positions(view, checkpoint, len(ts), offsets)
        if late is None:
            late = self.late_mask(view, ts, partition)
        keep = ~late
        if keep.any():
            wm0 = checkpoint.watermarks.get(view.version, _NO_WATERMARK)
            checkpoint.watermarks[view.version] = int(max(wm0, ts[keep].max()))
        keys = np.asarray(columns[view.entity.join_key])
        keep &= keys != ""  # an event without the entity's key belongs to none
        if not keep.any():
            return late
        keys = keys[keep]
        ts = ts[keep]
        cols = {c: np.asarray(columns[c])[keep] for c in view.columns}
        uniq, codes = np.unique(keys, return_inverse=True)
        order = np.lexsort((ts, codes))  # one sort per view: by entity, then time
        codes, ts = codes[order], ts[order]
        cols = {c: v[order] for c, v in cols.items()}
        if positions is not None:
            positions = positions[keep][order]
        new_entity = np.r_[True, codes[1:] != codes[:-1]]
        runs = []
        for hop, layout in self._layouts[view.version].items():
            tiles = ts // hop  # sorted within each entity, so runs are contiguous
            starts = np.flatnonzero(new_entity | np.r_[True, tiles[1:] != tiles[:-1]])
            parts, distinct = partials(layout, starts, ts, cols)
            table = Table(view.version, hop, partition, layout, self._ring_sizes[view.version][hop])
            runs.append(Runs(table, codes[starts], tiles[starts], parts, distinct))
        for layout in self._lists[view.version]:  # one run per event: the list keeps n
            assert positions is not None
            rows, entries = list_parts(layout, cols, partition, positions)
            table = Table(view.version, layout.hop_ms, partition, layout, layout.n)
            runs.append(Runs(table, codes[rows], ts[rows], entries[rows], NO_CODES))
        self.store.apply(uniq, runs)
        return late

    def _positions(
        self,
        view: FeatureView,
        checkpoint: Checkpoint,
        rows: int,
        offsets: npt.NDArray[np.int64] | None,
    ) -> npt.NDArray[np.int64] | None:
        """Each row's log position, for views with lists (ties of event time go to the
        later one): its offset, or without offsets the next numbers of the partition's
        count of events applied (kept in the checkpoint, so a restart goes on from it)."""
        if not self._lists[view.version]:
            return None
        first = checkpoint.positions.get(view.version, 0)
        out = np.arange(first, first + rows, dtype=np.int64) if offsets is None else offsets
        checkpoint.positions[view.version] = max(first, int(out.max()) + 1)
        return out
