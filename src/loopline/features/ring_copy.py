"""A tile ring's copy for snapshots, kept up to date from what changed in the ring.

A snapshot writes a consistent copy of every ring while the ring goes on changing, so
it writes a copy: one array pair (tile ids, partials) per block of the ring. The copy
follows the ring from its change marks (:class:`~loopline.features.ring.TileRing`):
cleared slots row by row, merged tiles cell by cell, and, once a ring's changes are too
many to list, its blocks whole in one sequential copy. A new block is copied in the
slots in use; the rest of its copy stays untouched, zero pages.

The embedded store syncs the copy at each commit of a small batch, while the batch's
tiles are still in the CPU's cache: copied only at the snapshot, a few seconds' tiles
stalled the caller ~50 ms (random reads of cold memory; docs/decisions/0003).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from loopline.features import compiled
from loopline.features.kernel import F64
from loopline.features.ring import NO_TILE, TileRing

I64 = npt.NDArray[np.int64]


def pending(ring: TileRing) -> float:
    """How many changed slots and cells of ``ring`` its copy has not taken (infinite
    once they are too many to list)."""
    cells = math.inf if ring.dirty_cells is None else len(ring.dirty_cells)
    return len(ring.dirty) + cells


class RingCopy:
    """The copy of one ring, block by block."""

    def __init__(self) -> None:
        self.blocks: list[tuple[I64, F64]] = []

    def sync(self, ring: TileRing, n: int) -> None:
        """Take what changed in ``ring`` (``n`` slots in use) since the last sync."""
        fresh = len(self.blocks)
        for b in range(fresh, len(ring.ids)):
            used = max(0, min(ring.block, n - b * ring.block))
            # np.zeros, not zeros_like: calloc'd pages, faulted in only where written
            copy = np.full_like(ring.ids[b], NO_TILE), np.zeros(ring.values[b].shape)
            copy[0][:used], copy[1][:used] = ring.ids[b][:used], ring.values[b][:used]
            self.blocks.append(copy)
        changed = _drain(ring.dirty)
        for b, idx in ring.by_block(changed):
            if b < fresh:
                rows = (changed if idx is None else changed[idx]) % ring.block
                compiled.copy_rows(*self.blocks[b], ring.ids[b], ring.values[b], rows)
        cells, ring.dirty_cells = ring.dirty_cells, set()
        if cells is None:  # too many to list: every block whole, one sequential copy
            for b, (lo, hi) in enumerate(ring.spans(n)[:fresh]):
                self.blocks[b][0][: hi - lo] = ring.ids[b][: hi - lo]
                self.blocks[b][1][: hi - lo] = ring.values[b][: hi - lo]
            return
        slots, positions = np.divmod(_drain(cells), ring.ring)
        for b, idx in ring.by_block(slots):
            if b < fresh:
                rows, at = (slots, positions) if idx is None else (slots[idx], positions[idx])
                rows = rows % ring.block
                compiled.copy_cells(*self.blocks[b], ring.ids[b], ring.values[b], rows, at)

    def arrays(self, ring: TileRing, n: int) -> tuple[list[I64], list[F64]]:
        """The copy's tile ids and partials of the first ``n`` slots, per block (views:
        the copy must not be synced while a snapshot writes them)."""
        spans = ring.spans(n)
        ids = [self.blocks[b][0][: hi - lo] for b, (lo, hi) in enumerate(spans)]
        data = [self.blocks[b][1][: hi - lo] for b, (lo, hi) in enumerate(spans)]
        return ids, data


def _drain(changed: set[int]) -> I64:
    """The set's members as an array; the set is emptied."""
    out = np.fromiter(changed, dtype=np.int64, count=len(changed))
    changed.clear()
    return out
