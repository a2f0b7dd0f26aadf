"""The online engine's reads: the features of entities at a read time, from the tiles the
store holds (:class:`OnlineReads`, which :class:`loopline.features.online.OnlineEngine`
extends with the writes).

Three paths, one kernel: a single entity through the compiled row plan
(:mod:`loopline.features.rowread`); many (key, time) rows in one compiled pass per ring
(``read_many``); and, on a remote store, every view of a batch in one round trip
(``read_views``). ``read_event`` merges an incoming event into its entity's history
before the event is ingested.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.features import compiled, rowread
from loopline.features.base import (
    BatchReads,
    ManyValues,
    ManyWindows,
    OnlineStore,
    RingReads,
    Window,
    WindowValue,
)
from loopline.features.definitions import Feature, FeatureView
from loopline.features.distinct import run_sets
from loopline.features.kernel import F64, FINALIZE_CODES, Layout, finalize_vector, partials
from loopline.features.lists import ListLayout, finalize_list, with_own
from loopline.features.ring import combine

Columns = Mapping[str, npt.NDArray[np.generic]]


@dataclass(frozen=True, slots=True)
class FeatureValues:
    """One entity's features at ``as_of_ms``.

    Attributes:
        values: Feature name -> value (NaN where a window holds no event; 0 for counts):
            a float, or for a vector or list feature an array of its ``dim`` or ``n``.
        as_of_ms: The read time.
        freshness_ms: Event time of the newest event included, or None.
    """

    values: dict[str, Any]
    as_of_ms: int
    freshness_ms: int | None

    @property
    def freshness_lag_ms(self) -> int | None:
        return None if self.freshness_ms is None else self.as_of_ms - self.freshness_ms


@dataclass(frozen=True)
class Group:
    """Features read from one window of one hop: one merge serves them all."""

    layout: Layout
    tiles: int
    features: tuple[Feature, ...]
    codes: tuple[int, ...]  # each feature's aggregation function (FINALIZE_CODES)
    offsets: tuple[int, ...]  # where each feature's fields start in the partial
    distinct: tuple[int | None, ...]  # each feature's index among the layout's sets

    @property
    def is_list(self) -> bool:
        """A ``last_n`` table's group: its features are its windows, read from entries."""
        return self.layout.is_list

    def finish(
        self, merged: F64, sets: Any, t: npt.NDArray[np.int64] | int
    ) -> tuple[dict[str, Any], F64 | float]:
        """Each feature's value from the merged partial(s) read at ``t`` (one row, 1-D, or
        one per row of ``merged`` and ``t``), and the newest event time included."""
        out: dict[str, Any] = {}
        rows = np.ndim(merged) == 2
        if self.is_list:
            newest: Any = -math.inf
            for f in self.features:
                out[f.name], latest = finalize_list(f, merged, t)
                newest = np.maximum(newest, latest)
            return out, newest
        for f, code, off, d in zip(
            self.features, self.codes, self.offsets, self.distinct, strict=True
        ):
            if f.aggregation.dim is not None:
                out[f.name] = finalize_vector(f.aggregation, merged, off)
            elif d is not None and rows:  # the size of each row's union of sets
                out[f.name] = np.array([len(s[d]) for s in sets or ()], dtype=np.float64)
            elif d is not None:
                out[f.name] = float(len(sets[d]))
            elif rows:
                out[f.name] = compiled.finalize_rows(code, merged, off, np.asarray(t))
            else:
                out[f.name] = compiled.finalize_value(code, merged, off, int(t))
        return out, merged[..., -1]


def split_row(view: FeatureView, row: F64) -> dict[str, Any]:
    """A row of the view's values side by side (:attr:`FeatureView.places`) as feature ->
    float, or array for a vector or list feature."""
    if view.scalar:  # one number each
        return dict(zip((f.name for f in view.features), row.tolist(), strict=True))
    return {
        f.name: float(row[start]) if f.scalar else row[start : start + width].copy()
        for f, (start, width) in zip(view.features, view.places.values(), strict=True)
    }


def read_groups(
    view: FeatureView, hop_layouts: dict[int, Layout], list_layouts: Sequence[ListLayout] = ()
) -> list[Group]:
    """A view's features grouped by (hop, window): one merge serves each group; and one
    group per ``last_n`` table (its windows)."""
    groups: dict[tuple[int, int], list[Feature]] = {}
    for f in view.features:
        if f.aggregation.function != "last_n":
            groups.setdefault((f.hop_ms, f.tiles), []).append(f)
    out = []
    for (hop, tiles), feats in groups.items():
        layout = hop_layouts[hop]
        index = [layout.aggregations.index(f.aggregation) for f in feats]
        out.append(
            Group(
                layout,
                tiles,
                tuple(feats),
                tuple(FINALIZE_CODES[f.aggregation.function] for f in feats),
                tuple(layout.offsets[i] for i in index),
                tuple(layout.distinct.index(i) if i in layout.distinct else None for i in index),
            )
        )
    for layout in list_layouts:
        listed = tuple(f for f in view.features if f.aggregation == layout.aggregations[0])
        zeros = tuple(0 for _ in listed)
        out.append(Group(layout, 0, listed, zeros, zeros, tuple(None for _ in listed)))
    return out


class OnlineReads:
    """Reads of the state kept in ``store`` for the views' versions (set up by the engine)."""

    store: OnlineStore
    # the store's optional capabilities, found once: None where it lacks them
    _batches: BatchReads | None
    _rings: RingReads | None
    view: Callable[[str | FeatureView], FeatureView]  # a name's served version
    _groups: dict[str, list[Group]]
    _plans: dict[str, list[rowread.HopPlan]]

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
        return self.store.remote

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
        compiled pass per ring; on a remote store, in one round trip for them all. Stores
        without :class:`BatchReads` are read row by row, and so are fewer than four rows
        of a store in memory."""
        batches, in_memory = self._batches, not self.store.remote
        out: list[dict[str, npt.NDArray[np.float64]]] = []
        batched: list[tuple[int, FeatureView, Sequence[str], npt.NDArray[np.int64]]] = []
        for i, (name, keys, times_ms) in enumerate(reads):
            view, times = self.view(name), np.asarray(times_ms, dtype=np.int64)
            if batches is None or (len(keys) < 4 and in_memory):  # a few rows: the row path
                out.append(self._rows(view, keys, times))
            else:
                out.append({})
                batched.append((i, view, keys, times))
        if batches is None or not batched:
            return out
        asked = [
            (view.version, keys, self._many_windows(view, times))
            for _, view, keys, times in batched
        ]
        for (i, view, _, times), values in zip(batched, batches.read_views(asked), strict=True):
            out[i] = self._finish_many(view, values, times)
        return out

    def _rows(
        self, view: FeatureView, keys: Sequence[str], times: npt.NDArray[np.int64]
    ) -> dict[str, npt.NDArray[np.float64]]:
        if len(keys) == 1:  # one row as it was read (a fresh array): no copy, no stack
            row = np.asarray(self._row_array(view, keys[0], int(times[0])), dtype=np.float64)
            rows = row.reshape(1, view.width)
        else:
            rows = np.array(
                [self._row_array(view, k, t) for k, t in zip(keys, times.tolist(), strict=True)]
            ).reshape(len(keys), view.width)
        return {
            f.name: rows[:, start] if f.scalar else rows[:, start : start + w]
            for f, (start, w) in zip(view.features, view.places.values(), strict=True)
        }

    def _many_windows(self, view: FeatureView, times: npt.NDArray[np.int64]) -> list[ManyWindows]:
        return [
            ManyWindows(g.layout.hop_ms, g.layout, times // abs(g.layout.hop_ms), g.tiles)
            for g in self._groups[view.version]
        ]

    def _finish_many(
        self, view: FeatureView, found: Sequence[ManyValues], times: npt.NDArray[np.int64]
    ) -> dict[str, npt.NDArray[np.float64]]:
        out: dict[str, npt.NDArray[np.float64]] = {}
        for g, (merged, sets) in zip(self._groups[view.version], found, strict=True):
            out.update(g.finish(merged, sets, times)[0])
        return out if view.scalar else {f.name: out[f.name] for f in view.features}

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
        found = rowread.read_row(self._rings, view, self._plans[view.version], key, t)
        if found is None:
            return self._values(view, key, t)
        values, newest = found
        named = (
            dict(zip((f.name for f in view.features), values.tolist(), strict=True))
            if view.scalar  # one number each: no split
            else split_row(view, values)
        )
        return FeatureValues(named, t, int(newest) if math.isfinite(newest) else None)

    def _row_array(self, view: FeatureView, key: str, t: int) -> npt.NDArray[np.float64]:
        """:meth:`_row`'s values alone, side by side in ``view.features`` order."""
        found = rowread.read_row(self._rings, view, self._plans[view.version], key, t)
        if found is not None:
            return found[0]
        values = self._values(view, key, t).values
        return np.concatenate([np.atleast_1d(values[f.name]) for f in view.features])

    def _values(
        self,
        view: FeatureView,
        key: str,
        t: int,
        own: tuple[npt.NDArray[np.int64], Columns] | None = None,
    ) -> FeatureValues:
        groups = self._groups[view.version]
        windows = [
            Window(g.layout.hop_ms, g.layout, t // abs(g.layout.hop_ms), g.tiles) for g in groups
        ]
        values: dict[str, Any] = {}
        newest = -math.inf
        for g, found in zip(groups, self.store.read(view.version, key, windows), strict=True):
            merged, sets = found if own is None else _with_own(g.layout, found, *own)
            if not view.scalar:  # vectors and lists: Group.finish
                got, latest = g.finish(merged, sets, t)
                values.update(got)
                newest = max(newest, float(latest))
                continue
            for f, code, off, d in zip(g.features, g.codes, g.offsets, g.distinct, strict=True):
                values[f.name] = (
                    compiled.finalize_value(code, merged, off, t)
                    if d is None
                    else float(len(sets[d]))  # the size of the union of sets
                )
            newest = max(newest, float(merged[-1]))
        if not view.scalar:
            values = {f.name: values[f.name] for f in view.features}
        return FeatureValues(values, t, int(newest) if math.isfinite(newest) else None)


def _with_own(
    layout: Layout, found: WindowValue, ts: npt.NDArray[np.int64], cols: Columns
) -> WindowValue:
    if isinstance(layout, ListLayout):
        return with_own(layout, found[0], int(ts[0]), cols), []
    part, distinct = partials(layout, np.zeros(1, dtype=np.intp), ts, cols)
    (own,) = run_sets(distinct, 1, len(layout.distinct))
    return combine(layout, [found, (part[0], own)])
