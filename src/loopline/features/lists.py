"""List features (``last_n``): the values of the ``n`` newest events in a window.

A list cannot live in tiles, so each ``last_n`` aggregation keeps, per entity and source
partition, its ``n`` newest accepted events as (event time, log position, value), newest
first: a :class:`ListRing`. It is stored like a tile ring (its "tile ids" are the events'
times, its data the partition, position and value of each), so both stores snapshot,
evict, erase and ship it unchanged. A late event within the allowed lateness is merged
in its place; one older than all ``n`` kept is in no list a present read can see.

A read keeps the entries of every partition that pass the kernel's window rule at ``t``
(``ts // h > t // h - W / h`` and ``ts <= t``), newest first: by event time, then source
partition, then log position (the scored event itself, in ``read_event``, before the
others of its millisecond). The first ``n`` values are the feature; missing ones are NaN.
The offline engine orders by the same key (:mod:`loopline.features.offline`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError
from loopline.features.definitions import Aggregation, Feature, FeatureView
from loopline.features.distinct import Codes
from loopline.features.kernel import ADD, F64, Layout
from loopline.features.ring import NO_TILE, TileRing

I64 = npt.NDArray[np.int64]
ENTRY = 4  # a read's entry: event time, partition, position, value


@dataclass(frozen=True)
class ListLayout(Layout):
    """One ``last_n`` aggregation's table: ``n`` entries per slot. Its ``hop_ms`` is a
    negative number naming the table beside the view's tile tables."""

    n: int
    horizon_ms: int  # the longest window: older entries are outside every read

    @classmethod
    def of(cls, number: int, a: Aggregation) -> ListLayout:
        kinds = np.full(3, ADD, dtype=np.int8)  # ring data: partition, position, value
        return cls(-(number + 1), (a,), (0,), kinds, (), a.n or 0, max(a.windows))

    def span_ms(self, ring: int) -> int:
        return self.horizon_ms


def list_layouts(view: FeatureView) -> list[ListLayout]:
    """One table per ``last_n`` aggregation of ``view``, in declaration order."""
    found = [a for a in view.aggregations if a.function == "last_n"]
    return [ListLayout.of(i, a) for i, a in enumerate(found)]


def list_parts(
    layout: ListLayout,
    columns: Mapping[str, npt.NDArray[np.generic]],
    partition: int,
    positions: I64,
) -> tuple[npt.NDArray[np.bool_], F64]:
    """Which rows enter the list (the filter's, with a value), and their (partition,
    position, value) rows."""
    a = layout.aggregations[0]
    try:
        values = np.asarray(columns[a.column or ""], dtype=np.float64)
    except ValueError:
        raise ConfigError(
            f"The column {a.column!r} of Aggregation 'last_n' must hold numbers (ids as "
            f"integers); got {np.asarray(columns[a.column or '']).dtype} values."
        ) from None
    mask = ~np.isnan(values)
    if a.where is not None:
        mask &= columns[a.where.column] == a.where.value
    parts = np.column_stack(
        [np.full(len(values), partition, dtype=np.float64), positions.astype(np.float64), values]
    )
    return mask, parts


class ListRing(TileRing):
    """``n`` newest entries per slot: the tile ids are their event times (``NO_TILE``: none),
    the partials their (partition, position, value), newest first."""

    layout: ListLayout

    def idle(self, n: int) -> npt.NDArray[np.bool_]:
        """Slots whose newest entry is two horizons older than the ring's newest."""
        newest = self.newest_of(n)
        head = int(newest.max()) if n else NO_TILE
        if head == NO_TILE:
            return np.ones(n, dtype=np.bool_)
        return np.asarray(newest <= head - 2 * self.layout.horizon_ms)

    def merge_runs(self, slots: I64, tiles: I64, parts: F64, distinct: Codes) -> None:
        """Merge one event per row (``tiles``: event times, ``parts``: partition, position,
        value) into its slot's list: every slot's old and new entries sorted together,
        the ``n`` newest kept."""
        for b, idx in self.by_block(slots):
            rows = slots if idx is None else slots[idx]
            t, p = (tiles, parts) if idx is None else (tiles[idx], parts[idx])
            _merge_lists(self.ids[b], self.values[b], self.newest[b], rows % self.block, t, p)
        self.dirty.update(np.unique(slots).tolist())

    def window(self, slot: int, head: int, tiles: int) -> tuple[F64, list[set[int]]]:
        """The slot's entries (the engine applies each window's rule)."""
        return entries(*self.row(slot)), []


def _merge_lists(ids: I64, data: F64, newest: I64, slots: I64, tiles: I64, parts: F64) -> None:
    """:meth:`ListRing.merge_runs` on one block (``slots``: rows of it)."""
    touched = np.unique(slots)
    old_ids = ids[touched]
    held = old_ids != NO_TILE
    rows = np.repeat(touched, held.sum(axis=1))
    all_slots = np.r_[rows, slots]
    all_ts = np.r_[old_ids[held], tiles]
    all_data = np.concatenate([data[touched][held], parts])
    order = np.lexsort((all_data[:, 1], all_ts, all_slots))  # by slot, time, position
    all_slots, all_ts, all_data = all_slots[order], all_ts[order], all_data[order]
    ends = np.searchsorted(all_slots, all_slots, side="right")
    rank = ends - 1 - np.arange(len(all_slots))  # 0: the slot's newest
    keep = rank < ids.shape[1]
    ids[touched] = NO_TILE
    ids[all_slots[keep], rank[keep]] = all_ts[keep]
    data[all_slots[keep], rank[keep]] = all_data[keep]
    newest[touched] = ids[touched, 0]


def entries(ids: I64, data: F64) -> F64:
    """A slot's list as read entries, shape (n * ENTRY,): (time, partition, position,
    value) each, newest first; missing ones have time -inf."""
    out = np.full((len(ids), ENTRY), -math.inf)
    held = ids != NO_TILE
    out[held, 0] = ids[held]
    out[held, 1:] = data[held]
    return out.reshape(-1)


def merge_entries(n: int, found: list[F64]) -> F64:
    """Several partitions' entries of one key as one list of the ``n`` newest."""
    if len(found) == 1:
        return found[0]
    if not found:
        return np.full(n * ENTRY, -math.inf)
    stacked = np.concatenate([f.reshape(-1, ENTRY) for f in found])
    order = np.lexsort((stacked[:, 2], stacked[:, 1], stacked[:, 0]))[::-1][:n]
    return stacked[order].reshape(-1)


def many_entries(n: int, rings: list[tuple[TileRing, I64]], rows: int) -> F64:
    """Entries of ``rows`` keys (``slots[i]`` in each ring, -1: none there), shape
    (rows, n * ENTRY)."""
    out = np.full((rows, n * ENTRY), -math.inf)
    for i in range(rows):
        found = [entries(*ring.row(s)) for ring, slots in rings if (s := int(slots[i])) >= 0]
        if found:
            out[i] = merge_entries(n, found)
    return out


def with_own(
    layout: ListLayout, merged: F64, ts: int, columns: Mapping[str, npt.NDArray[np.generic]]
) -> F64:
    """The entries with the scored event's own (before the others of its millisecond)."""
    mask, parts = list_parts(layout, columns, 0, np.zeros(1, dtype=np.int64))
    if not mask[0]:
        return merged
    own = np.array([float(ts), math.inf, math.inf, parts[0, 2]])
    return merge_entries(layout.n, [merged, own])


def finalize_list(f: Feature, merged: F64, t: npt.NDArray[np.int64] | int) -> tuple[F64, F64]:
    """Feature ``f``'s lists from entries ``merged`` (one row of entries per read time
    ``t``, or one 1-D row): the values of the entries inside ``f``'s window at ``t``,
    newest first, NaN-padded to ``n``; and each row's newest time included (-inf: none)."""
    n = f.aggregation.n or 0
    e = merged.reshape(*merged.shape[:-1], -1, ENTRY)
    ts, values = e[..., 0], e[..., 3]
    at = np.asarray(t, dtype=np.int64)[..., None]
    h = f.hop_ms
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(ts) & (ts <= at) & (np.floor(ts / h) > at // h - f.tiles)
    order = np.argsort(~inside, axis=-1, kind="stable")  # kept entries first, in order
    picked = np.take_along_axis(np.where(inside, values, math.nan), order, axis=-1)[..., :n]
    newest = np.max(np.where(inside, ts, -math.inf), axis=-1, initial=-math.inf)
    return picked, newest
