"""The one-entity read path, compiled: what serving asks for one request at a time.

The general read (:meth:`OnlineEngine.read`) builds a window object per (hop, window),
merges each through its own compiled call and finalizes feature by feature in Python:
~60 µs a view, mostly call overhead. Here a view's read plan is built once: per hop, the
window lengths and, per feature, its function, group and field offset. A read is then one
compiled pass per hop over the entity's ring row that merges every window and finalizes
every feature (:func:`loopline.features.compiled.read_row`); distinct counts are the
union of the picked tiles' sets. Same kernel, same arithmetic: the same floats as the
general path (the parity tests read through here). Vector features are finalized from
the merged partials after the pass, and ``last_n`` lists from their list rings; each
feature's values sit side by side in the output row (:attr:`FeatureView.places`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from loopline.features import compiled
from loopline.features.base import RingReads
from loopline.features.definitions import Feature, FeatureView
from loopline.features.kernel import Layout, finalize_vector
from loopline.features.lists import ListLayout, entries, finalize_list
from loopline.features.ring import NO_TILE, TileRing

if TYPE_CHECKING:
    from loopline.features.reads import Group

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class HopPlan:
    """Every window of one hop of a view, and the features read from them."""

    layout: Layout
    ring: int  # tile positions per slot
    tiles: I64  # per window (group)
    codes: npt.NDArray[np.int8]  # per feature: its aggregation function
    groups: I64  # per feature: its window
    offsets: I64  # per feature: where its fields start in the partial
    slots: I64  # per feature: its place in the view's output
    distinct: tuple[tuple[int, int, int], ...]  # (output place, window, set index)
    vectors: tuple[tuple[int, int, int, Feature], ...]  # (output place, window, offset, feature)
    lists: tuple[tuple[int, Feature], ...]  # a list table's (output place, feature) pairs
    empty: F64  # the empty partial
    # scratch, reused by every read (one engine reads from one thread)
    merged: F64
    picked: I64
    counts: I64


def plan(view: FeatureView, groups: Sequence[Group], ring_sizes: dict[int, int]) -> list[HopPlan]:
    """The read plan of ``view`` from the engine's read groups (one per window)."""
    place = {name: start for name, (start, _) in view.places.items()}
    by_hop: dict[int, list[Group]] = {}
    for g in groups:
        by_hop.setdefault(g.layout.hop_ms, []).append(g)
    plans = []
    for hop, hop_groups in by_hop.items():
        codes, at, offsets, slots, distinct, vectors = [], [], [], [], [], []
        for gi, g in enumerate(hop_groups):
            if isinstance(g.layout, ListLayout):  # read from entries, in _lists
                continue
            for f, code, off, d in zip(g.features, g.codes, g.offsets, g.distinct, strict=True):
                if not f.scalar:
                    vectors.append((place[f.name], gi, off, f))
                    continue
                codes.append(code)
                at.append(gi)
                offsets.append(off)
                slots.append(place[f.name])
                if d is not None:
                    distinct.append((place[f.name], gi, d))
        layout = hop_groups[0].layout
        ring = layout.n if isinstance(layout, ListLayout) else ring_sizes[hop]
        plans.append(
            HopPlan(
                layout=layout,
                ring=ring,
                tiles=np.array([g.tiles for g in hop_groups], dtype=np.int64),
                codes=np.array(codes, dtype=np.int8),
                groups=np.array(at, dtype=np.int64),
                offsets=np.array(offsets, dtype=np.int64),
                slots=np.array(slots, dtype=np.int64),
                distinct=tuple(distinct),
                vectors=tuple(vectors),
                lists=tuple((place[f.name], f) for f in hop_groups[0].features)
                if isinstance(layout, ListLayout)
                else (),
                empty=layout.empty(),
                merged=np.empty((len(hop_groups), layout.width)),
                picked=np.empty((len(hop_groups), ring), dtype=np.int64),
                counts=np.empty(len(hop_groups), dtype=np.int64),
            )
        )
    return plans


_NO_ROW = np.full(1, NO_TILE, dtype=np.int64)


def read_row(
    store: RingReads | None, view: FeatureView, plans: list[HopPlan], key: str, t: int
) -> tuple[F64, float] | None:
    """``view``'s features of ``key`` at ``t`` (in ``view.features`` order) and the newest
    event time they include; None where this path does not apply (no store with tile
    rings in this process, or a key held by several partitions)."""
    if store is None:
        return None
    found = store.locate(view.version, key)
    if len(found) > 1:
        return None
    out = np.empty(view.width)
    newest = -math.inf
    for p in plans:
        ring = store.ring(view.version, p.layout, found[0][0]) if found else None
        slot = found[0][1] if found else 0
        if ring is None or slot >= ring.capacity:
            ids, data = _NO_ROW, np.empty((1, p.layout.width))
        else:
            ids, data = ring.row(slot)
        if p.lists:
            newest = max(newest, _lists(p, ids, data, t, out))
            continue
        newest = max(
            newest,
            compiled.read_row(
                ids, data, p.layout.kinds, p.empty, t // p.layout.hop_ms, p.tiles,
                p.merged, p.picked, p.counts, p.codes, p.groups, p.offsets, p.slots, t, out,
            ),
        )  # fmt: skip
        for place, g, d in p.distinct:
            out[place] = _distinct(p, ring, slot, g, d)
        for place, g, off, f in p.vectors:
            out[place : place + f.width] = finalize_vector(f.aggregation, p.merged[g], off)
    return out, newest


def _distinct(p: HopPlan, ring: TileRing | None, slot: int, g: int, d: int) -> float:
    """The size of the union of window ``g``'s picked tiles' codes of aggregation ``d``."""
    if ring is None:
        return 0.0
    picked = p.picked[g, : p.counts[g]].tolist()
    return float(len(ring.codes.union(slot, picked, len(p.layout.distinct))[d]))


def _lists(p: HopPlan, ids: I64, data: F64, t: int, out: F64) -> float:
    """A list table's features into ``out``; the newest event time they include."""
    merged = entries(ids, data)
    newest = -math.inf
    for place, f in p.lists:
        out[place : place + f.width], latest = finalize_list(f, merged, t)
        newest = max(newest, float(latest))
    return newest
