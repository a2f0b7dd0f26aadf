"""Tile rings: the dense, vectorised layout of online state for one (view, hop, partition).

Each entity owns a slot with ``R`` tile positions (``R`` = the most tiles any window of
that hop covers). Tile ``k`` lives at position ``k % R``; a newer tile evicts an older
one, and an event for a tile older than the one in its position is outside every window
a present read can cover, so it is dropped. Updates are scatter operations over all runs
of a micro-batch at once.

Reads are exact for ``as_of`` at or after the entity's newest event: the ring then holds
every tile a window can reach. Reads further in the past belong to the offline engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

from loopline.features import compiled
from loopline.features.base import ManyValues, ManyWindows
from loopline.features.kernel import F64, Layout, merge_many

NO_TILE = np.iinfo(np.int64).min
I64 = npt.NDArray[np.int64]


class SlotMap:
    """Entity key -> slot, shared by the rings of all hops of one (view, partition).

    Released slots (entities idle past every window, see :meth:`TileRing.idle`) are
    reused for new keys, so the rings hold the active entities, not every one ever seen.
    A released slot's key is ``None``."""

    def __init__(self, keys: list[str | None] | None = None) -> None:
        self.keys: list[str | None] = list(keys or [])
        self.slots: dict[str, int] = {k: i for i, k in enumerate(self.keys) if k is not None}
        self.free: list[int] = [i for i, k in enumerate(self.keys) if k is None]

    def slots_for(self, keys: npt.NDArray[np.generic]) -> I64:
        """The slot of each key, allocating slots for new keys."""
        slots, known, free = self.slots, self.keys, self.free
        out = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys.tolist()):
            slot = slots.get(key)
            if slot is None:
                if free:
                    slot = free.pop()
                    known[slot] = key
                else:
                    slot = len(known)
                    known.append(key)
                slots[key] = slot
            out[i] = slot
        return out

    def release(self, slots: I64) -> None:
        """Forget the keys of ``slots``; their slots go to new keys (clear the rings first)."""
        for slot in slots.tolist():
            key = self.keys[slot]
            if key is not None:
                del self.slots[key]
                self.keys[slot] = None
                self.free.append(slot)


class TileRing:
    """``ring`` tile positions per slot for one layout; slots come from a :class:`SlotMap`."""

    def __init__(self, layout: Layout, ring: int, capacity: int = 256) -> None:
        self.layout = layout
        self.ring = ring
        self.tile_ids = np.full((capacity, ring), NO_TILE, dtype=np.int64)
        self.newest = np.full(capacity, NO_TILE, dtype=np.int64)  # per slot: skip empty windows
        # A position without a tile id is never read, but a slot's whole row is stored
        # (Redis, snapshots): zeros, never uninitialised memory, which held other
        # records' bytes (a customer's transaction, found under another's key).
        self.data = np.zeros((capacity, ring, layout.width), dtype=np.float64)
        self.sets: dict[tuple[int, int], list[set[object]]] = {}
        self.dirty: set[int] = set()

    def ensure(self, slots: int) -> None:
        """Make room for ``slots`` slots (capacity doubles, so growth is amortised)."""
        if slots <= len(self.tile_ids):
            return
        capacity = max(slots, 2 * len(self.tile_ids))
        ids = np.full((capacity, self.ring), NO_TILE, dtype=np.int64)
        data = np.zeros((capacity, self.ring, self.layout.width), dtype=np.float64)
        ids[: len(self.tile_ids)] = self.tile_ids
        data[: len(self.data)] = self.data
        newest = np.full(capacity, NO_TILE, dtype=np.int64)
        newest[: len(self.newest)] = self.newest
        self.tile_ids, self.data, self.newest = ids, data, newest

    def idle(self, n: int) -> npt.NDArray[np.bool_]:
        """Which of the first ``n`` slots have no tile within two ring spans of the ring's
        newest tile: outside every window of a read at the present, and of a read that
        lags the present by up to a whole ring span (late events, out-of-order requests)."""
        newest = self.newest[:n]
        head = int(newest.max()) if n else NO_TILE
        if head == NO_TILE:
            return np.ones(n, dtype=np.bool_)
        return np.asarray(newest <= head - 2 * self.ring)

    def clear(self, slots: I64) -> None:
        """Empty ``slots`` (their keys were released), ready for new keys: no value of
        the old key is left to be stored under the new one."""
        self.tile_ids[slots] = NO_TILE
        self.data[slots] = 0.0
        self.newest[slots] = NO_TILE
        gone = set(slots.tolist())
        for name in [name for name in self.sets if name[0] in gone]:
            del self.sets[name]
        self.dirty.update(gone)

    def merge_runs(self, slots: I64, tiles: I64, parts: F64, sets: list[list[set[object]]]) -> None:
        """Merge one partial per (slot, tile) run into the ring, in order."""
        status = np.empty(len(slots), dtype=np.int8)
        compiled.merge_runs(
            self.tile_ids,
            self.data,
            self.newest,
            slots,
            tiles,
            parts,
            self.layout.kinds,
            self.layout.empty(),
            status,
        )
        self.dirty.update(np.unique(slots).tolist())
        if self.layout.distinct:
            self._merge_sets(slots, tiles % self.ring, status, sets)

    def _merge_sets(
        self, slots: I64, pos: I64, status: npt.NDArray[np.int8], sets: list[list[set[object]]]
    ) -> None:
        for s, p, done, theirs in zip(
            slots.tolist(), pos.tolist(), status.tolist(), sets, strict=True
        ):
            if done == compiled.DROPPED:
                continue
            mine = self.sets.get((s, p))
            if mine is None or done == compiled.FRESH:
                self.sets[(s, p)] = theirs  # a batch's sets are new: the ring takes them over
            else:
                for a, b in zip(mine, theirs, strict=True):
                    a |= b

    def window(self, slot: int, head: int, tiles: int) -> tuple[F64, list[set[object]]]:
        """The merged partial of tiles ``head - tiles + 1 .. head`` of ``slot``, and per
        distinct_count aggregation the union of its sets."""
        if self.newest[slot] <= head - tiles:  # every tile of the slot is older
            return self.layout.empty(), [set() for _ in self.layout.distinct]
        ring_sets = self.sets
        return window_of(
            self.layout,
            self.tile_ids[slot],
            self.data[slot],
            lambda pos: ring_sets.get((slot, pos), []),
            head,
            tiles,
        )


def make_ring(layout: Layout, ring: int, capacity: int = 256) -> TileRing:
    """A tile ring, or for a ``last_n`` table a list ring (:mod:`loopline.features.lists`)."""
    if layout.is_list:
        from loopline.features import lists

        return lists.ListRing(layout, ring, capacity)
    return TileRing(layout, ring, capacity)


def window_of(
    layout: Layout,
    ids: I64,
    data: F64,
    sets_at: Callable[[int], list[set[object]]],
    head: int,
    tiles: int,
) -> tuple[F64, list[set[object]]]:
    """One slot's window from its raw ring row: ``ids`` (R,), ``data`` (R, width), and
    ``sets_at(position)``, its distinct-count sets (a list table: all its entries)."""
    if layout.is_list:
        from loopline.features import lists

        return lists.entries(ids, data), []
    merged = layout.empty()
    picked = np.empty(len(ids), dtype=np.int64)
    n = compiled.window_merge(ids, data, layout.kinds, head, tiles, merged, picked)
    if not layout.distinct:
        return merged, []
    return merged, _union([sets_at(p) for p in picked[:n].tolist()], len(layout.distinct))


def windows_of(w: ManyWindows, rings: Iterable[tuple[TileRing, I64]], n: int) -> ManyValues:
    """One window for ``n`` rows, merged across the rings of every partition
    (``slots[i]``: row ``i``'s slot in that ring, -1: none there): the merged partials
    ``(n, width)`` and, with distinct counts, each row's sets. One compiled call a ring
    (a list table: each row's entries, :func:`loopline.features.lists.many_entries`)."""
    if w.layout.is_list:
        from loopline.features import lists

        assert isinstance(w.layout, lists.ListLayout)
        return lists.many_entries(w.layout.n, list(rings), n), None
    merged = np.tile(w.layout.empty(), (n, 1))
    sets: list[list[set[object]]] | None = None
    if w.layout.distinct:
        sets = [[set() for _ in w.layout.distinct] for _ in range(n)]
    for ring, slots in rings:
        picked = np.empty((n, ring.ring), dtype=np.int64)
        counts = np.zeros(n, dtype=np.int64)
        compiled.windows_merge(
            ring.tile_ids, ring.data, ring.newest, w.layout.kinds, slots,
            w.heads, w.tiles, merged, picked, counts,
        )  # fmt: skip
        if sets is not None:
            for i in np.flatnonzero(counts).tolist():
                s = int(slots[i])
                for pos in picked[i, : counts[i]].tolist():
                    for mine, theirs in zip(sets[i], ring.sets.get((s, pos), ()), strict=False):
                        mine |= theirs
    return merged, sets


def _union(tile_sets: list[list[set[object]]], count: int) -> list[set[object]]:
    return [set().union(*(s[i] for s in tile_sets if s)) for i in range(count)]


def combine(
    layout: Layout, found: list[tuple[F64, list[set[object]]]]
) -> tuple[F64, list[set[object]]]:
    """Merge one window's values from several partitions."""
    if len(found) == 1:
        return found[0]
    if layout.is_list:
        from loopline.features import lists

        assert isinstance(layout, lists.ListLayout)
        return lists.merge_entries(layout.n, [m for m, _ in found]), []
    merged = merge_many(layout, np.array([m for m, _ in found]).reshape(-1, layout.width))
    return merged, _union([s for _, s in found], len(layout.distinct))
