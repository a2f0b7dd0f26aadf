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
from loopline.features.base import ManyValues, ManyWindows, WindowValue
from loopline.features.distinct import Codes, CodeTable
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


# changed cells are listed while they are under 1/16 of a ring's cells; past that, a
# sequential copy of whole blocks costs less than visiting each (and than listing them)
LISTED_CELLS = 16
BLOCK_BYTES = 4 << 20  # partials per block of a ring that grows: ~4 MiB, 64-1,024 slots


def block_slots(ring: int, width: int) -> int:
    """Slots per block of a growing ring of ``ring`` positions of ``width`` fields."""
    return min(1024, max(64, BLOCK_BYTES // (ring * (width + 1) * 8)))


class TileRing:
    """``ring`` tile positions per slot for one layout; slots come from a :class:`SlotMap`.

    The slots live in fixed-size blocks (``block`` slots each): growing adds a block and
    copies nothing, so a new entity never stalls a batch on copying the whole state and
    faulting in twice its pages (as a doubling array did), and a snapshot copies the
    blocks that changed. Slot ``s`` is row ``s % block`` of block ``s // block``. With
    ``capacity``, one block of that many slots (a ring decoded for one read)."""

    def __init__(self, layout: Layout, ring: int, capacity: int | None = None) -> None:
        self.layout = layout
        self.ring = ring
        self.block = max(1, capacity or block_slots(ring, layout.width))
        # per block: tile ids (block, R), partials (block, R, width), newest tile (block,)
        self.ids: list[I64] = []
        self.values: list[F64] = []
        self.newest: list[I64] = []
        self.codes = CodeTable(ring, self.block)  # the distinct counts' codes of every tile
        # what changed since a snapshot's copy last took it: whole slots (cleared, or a
        # list ring's) and tile cells (slot * ring + position: a merge changes one
        # position); None once the cells are too many to be worth listing (a bulk load:
        # the copy then takes every block whole)
        self.dirty: set[int] = set()
        self.dirty_cells: set[int] | None = set()
        self.ensure(self.block)

    @property
    def capacity(self) -> int:
        return len(self.ids) * self.block

    def ensure(self, slots: int) -> None:
        """Make room for ``slots`` slots, a block at a time. A position without a tile id
        is never read, but a slot's whole row is stored (Redis, snapshots): zeros, never
        uninitialised memory, which held other records' bytes."""
        while self.capacity < slots:
            self.ids.append(np.full((self.block, self.ring), NO_TILE, dtype=np.int64))
            self.values.append(np.zeros((self.block, self.ring, self.layout.width)))
            self.newest.append(np.full(self.block, NO_TILE, dtype=np.int64))

    def row(self, slot: int) -> tuple[I64, F64]:
        """Slot ``slot``'s tile ids (R,) and partials (R, width): views, not copies."""
        b, i = divmod(slot, self.block)
        return self.ids[b][i], self.values[b][i]

    def put_row(self, slot: int, ids: I64, data: F64) -> None:
        """Set slot ``slot``'s tile ids and partials (a stored row read back)."""
        b, i = divmod(slot, self.block)
        self.ids[b][i] = ids
        self.values[b][i] = data.reshape(self.ring, -1)
        self.newest[b][i] = ids.max()

    def put_rows(self, ids: I64, data: F64) -> None:
        """Set slots ``0 .. len(ids) - 1`` from stacked rows (a snapshot read back)."""
        self.ensure(len(ids))
        for b, (lo, hi) in enumerate(self.spans(len(ids))):
            self.ids[b][: hi - lo] = ids[lo:hi]
            self.values[b][: hi - lo] = data[lo:hi]
            self.newest[b][: hi - lo] = ids[lo:hi].max(axis=1)

    def spans(self, n: int) -> list[tuple[int, int]]:
        """The slot range ``[lo, hi)`` of each block holding slots below ``n``."""
        return [(lo, min(lo + self.block, n)) for lo in range(0, n, self.block)]

    def newest_of(self, n: int) -> I64:
        """The newest tile of each of the first ``n`` slots."""
        if n <= self.block:
            return self.newest[0][:n]
        return np.concatenate(self.newest)[:n]

    def by_block(self, slots: I64) -> list[tuple[int, I64 | None]]:
        """``slots`` grouped by block, in their order within each: (block, the positions
        in ``slots`` of that block's, None for all of them)."""
        if not len(slots):
            return []
        blocks = slots // self.block
        first, last = int(blocks.min()), int(blocks.max())
        if first == last:
            return [(first, None)]
        return [(int(b), np.flatnonzero(blocks == b)) for b in np.unique(blocks).tolist()]

    def idle(self, n: int) -> npt.NDArray[np.bool_]:
        """Which of the first ``n`` slots have no tile within two ring spans of the ring's
        newest tile: outside every window of a read at the present, and of a read that
        lags the present by up to a whole ring span (late events, out-of-order requests)."""
        newest = self.newest_of(n)
        head = int(newest.max()) if n else NO_TILE
        if head == NO_TILE:
            return np.ones(n, dtype=np.bool_)
        return np.asarray(newest <= head - 2 * self.ring)

    def clear(self, slots: I64) -> None:
        """Empty ``slots`` (their keys were released), ready for new keys: no value of
        the old key is left to be stored under the new one."""
        for b, idx in self.by_block(slots):
            rows = (slots if idx is None else slots[idx]) % self.block
            self.ids[b][rows] = NO_TILE
            self.values[b][rows] = 0.0
            self.newest[b][rows] = NO_TILE
        self.codes.drop_slots(slots)
        self.dirty.update(slots.tolist())

    def merge_runs(self, slots: I64, tiles: I64, parts: F64, distinct: Codes) -> None:
        """Merge one partial per (slot, tile) run into the ring, in order."""
        status = np.empty(len(slots), dtype=np.int8)
        empty = self.layout.empty()
        for b, idx in self.by_block(slots):
            if idx is None:
                local, t, p, st = slots % self.block, tiles, parts, status
            else:
                local, t, p = slots[idx] % self.block, tiles[idx], parts[idx]
                st = np.empty(len(idx), dtype=np.int8)
            compiled.merge_runs(
                self.ids[b], self.values[b], self.newest[b], local, t, p,
                self.layout.kinds, empty, st,
            )  # fmt: skip
            if idx is not None:
                status[idx] = st
        cells = slots * self.ring + tiles % self.ring
        if self.dirty_cells is not None:
            self.dirty_cells.update(np.unique(cells).tolist())
            if len(self.dirty_cells) * LISTED_CELLS > self.capacity * self.ring:
                self.dirty_cells = None
        if self.layout.distinct:
            self._merge_codes(cells, status, distinct)

    def _merge_codes(self, keys: I64, status: npt.NDArray[np.int8], distinct: Codes) -> None:
        """The runs' codes into the table: at each (slot, position), those of the runs
        from its last fresh tile on (an earlier run's tile was evicted by it), none of a
        dropped run's."""
        runs, which, codes = distinct
        unique, at = np.unique(keys, return_inverse=True)
        fresh = np.flatnonzero(status == compiled.FRESH)
        last = np.full(len(unique), -1, dtype=np.int64)
        np.maximum.at(last, at[fresh], fresh)
        live = (np.arange(len(keys)) >= last[at]) & (status != compiled.DROPPED)
        kept = live[runs]
        self.codes.merge(keys[runs[kept]], which[kept], codes[kept], unique[last >= 0])

    def window(self, slot: int, head: int, tiles: int) -> WindowValue:
        """The merged partial of tiles ``head - tiles + 1 .. head`` of ``slot``, and per
        distinct_count aggregation the union of its codes."""
        b, i = divmod(slot, self.block)
        if self.newest[b][i] <= head - tiles:  # every tile of the slot is older
            return self.layout.empty(), [set() for _ in self.layout.distinct]
        ids, data = self.row(slot)
        count = len(self.layout.distinct)
        return window_of(
            self.layout, ids, data, lambda picked: self.codes.union(slot, picked, count), head,
            tiles,
        )  # fmt: skip


def make_ring(layout: Layout, ring: int, capacity: int | None = None) -> TileRing:
    """A tile ring, or for a ``last_n`` table a list ring (:mod:`loopline.features.lists`)."""
    if layout.is_list:
        from loopline.features import lists

        return lists.ListRing(layout, ring, capacity)
    return TileRing(layout, ring, capacity)


def window_of(
    layout: Layout,
    ids: I64,
    data: F64,
    union: Callable[[list[int]], list[set[int]]],
    head: int,
    tiles: int,
) -> WindowValue:
    """One slot's window from its raw ring row: ``ids`` (R,), ``data`` (R, width), and
    ``union(positions)``, the distinct counts' codes at those positions (a list table:
    all its entries)."""
    if layout.is_list:
        from loopline.features import lists

        return lists.entries(ids, data), []
    merged = layout.empty()
    picked = np.empty(len(ids), dtype=np.int64)
    n = compiled.window_merge(ids, data, layout.kinds, head, tiles, merged, picked)
    if not layout.distinct:
        return merged, []
    return merged, union(picked[:n].tolist())


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
    sets: list[list[set[int]]] | None = None
    count = len(w.layout.distinct)
    if count:
        sets = [[set() for _ in range(count)] for _ in range(n)]
    for ring, slots in rings:
        picked = np.empty((n, ring.ring), dtype=np.int64)
        counts = np.zeros(n, dtype=np.int64)
        held = np.flatnonzero(slots >= 0)
        for b, idx in ring.by_block(slots[held]):
            local = np.full(n, -1, dtype=np.int64)  # rows of other blocks: none here
            rows = held if idx is None else held[idx]
            local[rows] = slots[rows] % ring.block
            compiled.windows_merge(
                ring.ids[b], ring.values[b], ring.newest[b], w.layout.kinds, local,
                w.heads, w.tiles, merged, picked, counts,
            )  # fmt: skip
        if sets is not None:
            for i in np.flatnonzero(counts).tolist():
                found = ring.codes.union(int(slots[i]), picked[i, : counts[i]].tolist(), count)
                for mine, theirs in zip(sets[i], found, strict=True):
                    mine |= theirs
    return merged, sets


def _union(tile_sets: list[list[set[int]]], count: int) -> list[set[int]]:
    return [set().union(*(s[i] for s in tile_sets if s)) for i in range(count)]


def combine(layout: Layout, found: list[WindowValue]) -> WindowValue:
    """Merge one window's values from several partitions."""
    if len(found) == 1:
        return found[0]
    if layout.is_list:
        from loopline.features import lists

        assert isinstance(layout, lists.ListLayout)
        return lists.merge_entries(layout.n, [m for m, _ in found]), []
    merged = merge_many(layout, np.array([m for m, _ in found]).reshape(-1, layout.width))
    return merged, _union([s for _, s in found], len(layout.distinct))
