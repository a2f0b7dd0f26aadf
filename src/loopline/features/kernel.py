"""The aggregation kernel: partial aggregates in time tiles; update and merge.

The stream job, the backfill and the read path all go through here, so they agree.

The window rule, one everywhere: a feature with window ``W`` and hop ``h`` (its tile
size), read at time ``t``, aggregates the events that

* fall in the ``W / h`` tiles ending with the tile of ``t``:
  ``ts // h > t // h - W // h`` (the tail is snapped to whole tiles, as in Chronon), and
* happened at or before ``t``: ``ts <= t`` (the head is exact to the millisecond), and
* had arrived by ``t`` (a late event that arrived after a read was not part of it).

A tile's partial is a vector of fields: count, sum, sum of squares, min, max, the latest
(timestamp, value) pair, the newest timestamp, and for ``distinct_count`` its values'
codes (:mod:`loopline.features.distinct`). A vector
sum or mean (``dim``) keeps ``dim`` sum lanes (after its count, for a mean): the same
addition, lane by lane. ``last_n`` lives outside tiles (:mod:`loopline.features.lists`). A merged
partial becomes a feature value in :func:`loopline.features.compiled.finalize_value`, by
the aggregation's number in :data:`FINALIZE_CODES`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError
from loopline.features.definitions import Aggregation, FeatureView
from loopline.features.distinct import NO_CODES, Codes, value_codes

F64 = npt.NDArray[np.float64]

# Field kinds: how two partials merge.
ADD, MIN, MAX, LAST_TS, LAST_VAL = range(5)
_FIELDS = {
    "count": (("n", ADD),),
    "sum": (("s", ADD),),
    "mean": (("n", ADD), ("s", ADD)),
    "std": (("n", ADD), ("s", ADD), ("ss", ADD)),
    "min": (("min", MIN),),
    "max": (("max", MAX),),
    "last": (("last_ts", LAST_TS), ("last_val", LAST_VAL)),
    "time_since_last": (("max_ts", MAX),),
    "distinct_count": (),
}
_EMPTY = {ADD: 0.0, MIN: math.inf, MAX: -math.inf, LAST_TS: -math.inf, LAST_VAL: math.nan}

# Aggregations by number, for the compiled finalize.
FINALIZE_CODES = {f: i for i, f in enumerate(_FIELDS)}
Key = tuple[str, str | None, object, int | None]  # (function, column, filter, dim)
# A variance E[x^2] - E[x]^2 under this fraction of E[x^2] is rounding noise, not spread.
VARIANCE_FLOOR = 1e-12


def _key(a: Aggregation) -> Key:
    return (a.function, a.column, a.where, a.dim)


def fields(a: Aggregation) -> tuple[tuple[str, int], ...]:
    """The (name, merge kind) of each field of ``a``'s partial: ``dim`` sum lanes for a
    vector sum, a count and ``dim`` lanes for a vector mean."""
    if a.dim is None:
        return _FIELDS[a.function]
    lanes = (("s", ADD),) * a.dim
    return (("n", ADD), *lanes) if a.function == "mean" else lanes


@dataclass(frozen=True)
class Layout:
    """Where each aggregation's fields sit in the partial vector of one hop's tiles."""

    hop_ms: int
    aggregations: tuple[Aggregation, ...]
    offsets: tuple[int, ...]
    kinds: npt.NDArray[np.int8]
    distinct: tuple[int, ...]  # indexes into aggregations of the distinct_count ones

    @classmethod
    def build(cls, hop_ms: int, aggregations: list[Aggregation]) -> Layout:
        offsets: list[int] = []
        kinds: list[int] = []
        distinct: list[int] = []
        for i, a in enumerate(aggregations):
            offsets.append(len(kinds))
            kinds.extend(kind for _, kind in fields(a))
            if a.function == "distinct_count":
                distinct.append(i)
        kinds.append(MAX)  # the last field: newest event time in the tile (freshness)
        return cls(
            hop_ms,
            tuple(aggregations),
            tuple(offsets),
            np.array(kinds, dtype=np.int8),
            tuple(distinct),
        )

    @property
    def width(self) -> int:
        return len(self.kinds)

    def span_ms(self, ring: int) -> int:
        """The time a ring of ``ring`` tiles covers."""
        return ring * self.hop_ms

    @property
    def is_list(self) -> bool:
        """A ``last_n`` list table (:class:`loopline.features.lists.ListLayout`): those are
        numbered below zero, where a tile table has its hop."""
        return self.hop_ms < 0

    @functools.cached_property
    def columns(self) -> tuple[npt.NDArray[np.intp], ...]:
        """Field indexes by merge kind: (add, min, max, last timestamp)."""
        k = self.kinds
        return tuple(np.flatnonzero(k == kind) for kind in (ADD, MIN, MAX, LAST_TS))

    @functools.cached_property
    def masks(self) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Which fields add, and which take the minimum (the rest take the maximum; the
        (timestamp, value) pairs of ``last`` are fixed up after)."""
        return self.kinds == ADD, self.kinds == MIN

    @functools.cached_property
    def _empty(self) -> F64:
        return np.array([_EMPTY[int(k)] for k in self.kinds], dtype=np.float64)

    def empty(self) -> F64:
        return self._empty.copy()


def layouts(view: FeatureView) -> dict[int, Layout]:
    """One layout per hop: the view's distinct aggregations that have a window of that hop."""
    by_hop: dict[int, dict[Key, Aggregation]] = {}
    for f in view.features:
        if f.aggregation.function == "last_n":  # not in tiles: loopline.features.lists
            continue
        by_hop.setdefault(f.hop_ms, {}).setdefault(_key(f.aggregation), f.aggregation)
    return {hop: Layout.build(hop, list(aggs.values())) for hop, aggs in sorted(by_hop.items())}


def partials(
    layout: Layout,
    starts: npt.NDArray[np.intp],
    ts: npt.NDArray[np.int64],
    columns: Mapping[str, npt.NDArray[np.generic]],
) -> tuple[F64, Codes]:
    """Update: the partial of each run of events, runs beginning at ``starts``.

    Returns an array of shape (runs, width) and the distinct_count aggregations' unique
    (run, aggregation, value code) triples, sorted by run (none when the layout has no
    distinct count). Vectorised: one reduceat per field.
    """
    out = np.empty((len(starts), layout.width), dtype=np.float64)
    found: list[Codes] = []
    tsf = ts.astype(np.float64)
    for a, off in zip(layout.aggregations, layout.offsets, strict=True):
        mask = np.ones(len(ts), dtype=bool)
        if a.where is not None:
            mask &= columns[a.where.column] == a.where.value
        if a.dim is not None:
            _vector_fields(a, out, off, starts, mask, vector_column(a, columns))
            continue
        values = None
        if a.column is not None and a.function != "distinct_count":
            values = np.asarray(columns[a.column], dtype=np.float64)
            mask &= ~np.isnan(values)
        _update_fields(a, out, off, starts, mask, values, tsf)
        if a.function == "distinct_count":
            _distinct(found, len(found), starts, np.asarray(columns[a.column or ""]), mask)
    out[:, -1] = np.maximum.reduceat(tsf, starts)
    if not found:
        return out, NO_CODES
    runs, which, codes = (np.concatenate(c) for c in zip(*found, strict=True))
    order = np.argsort(runs, kind="stable")
    return out, (runs[order], which[order], codes[order])


def vector_column(a: Aggregation, columns: Mapping[str, npt.NDArray[np.generic]]) -> F64:
    """``a``'s column as an array of shape (rows, dim); a row with a NaN is no value."""
    values = np.asarray(columns[a.column or ""], dtype=np.float64)
    if values.ndim == 1 and len(values) == 0:
        values = values.reshape(0, a.dim or 0)
    if values.ndim != 2 or values.shape[1] != a.dim:
        raise ConfigError(
            f"The column {a.column!r} of Aggregation {a.function!r} (dim={a.dim}) must hold "
            f"vectors of {a.dim} floats: an array of shape (rows, {a.dim}). Got shape "
            f"{values.shape}."
        )
    return values


def _vector_fields(
    a: Aggregation,
    out: F64,
    off: int,
    starts: npt.NDArray[np.intp],
    mask: npt.NDArray[np.bool_],
    values: F64,
) -> None:
    mask = mask & ~np.isnan(values).any(axis=1)
    lanes = off
    if a.function == "mean":
        out[:, off] = np.add.reduceat(mask.astype(np.float64), starts)
        lanes += 1
    v = np.where(mask[:, None], values, 0.0)
    out[:, lanes : lanes + (a.dim or 0)] = np.add.reduceat(v, starts, axis=0)


def finalize_vector(a: Aggregation, merged: F64, off: int) -> F64:
    """The value of the vector sum or mean ``a`` from merged partials, one per row of
    ``merged`` (or one, 1-D): the lane sums, or the lane sums over the count (NaN with
    no event)."""
    dim = a.dim or 0
    if a.function == "sum":
        return np.array(merged[..., off : off + dim], dtype=np.float64)
    n = merged[..., off : off + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: F64 = np.where(n > 0, merged[..., off + 1 : off + 1 + dim] / n, math.nan)
    return mean


def _distinct(
    found: list[Codes],
    d: int,
    starts: npt.NDArray[np.intp],
    column: npt.NDArray[np.generic],
    mask: npt.NDArray[np.bool_],
) -> None:
    """Append the ``d``-th distinct aggregation's unique (run, code) pairs."""
    run_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(column)]))[mask]
    codes = value_codes(column[mask])
    order = np.lexsort((codes, run_of))
    run_of, codes = run_of[order], codes[order]
    new = np.r_[True, (np.diff(run_of) != 0) | (np.diff(codes) != 0)]
    found.append((run_of[new], np.full(int(new.sum()), d, dtype=np.int64), codes[new]))


def _update_fields(
    a: Aggregation,
    out: F64,
    off: int,
    starts: npt.NDArray[np.intp],
    mask: npt.NDArray[np.bool_],
    values: F64 | None,
    tsf: F64,
) -> None:
    m = mask.astype(np.float64)
    fn = a.function
    if fn in ("count", "mean", "std"):
        out[:, off] = np.add.reduceat(m, starts)
    if values is not None:
        v = np.where(mask, values, 0.0)
        if fn in ("sum", "mean", "std"):
            out[:, off + (fn != "sum")] = np.add.reduceat(v, starts)
        if fn == "std":
            out[:, off + 2] = np.add.reduceat(v * v, starts)
        if fn == "min":
            out[:, off] = np.minimum.reduceat(np.where(mask, values, math.inf), starts)
        if fn == "max":
            out[:, off] = np.maximum.reduceat(np.where(mask, values, -math.inf), starts)
        if fn == "last":
            _last(out, off, starts, mask, values, tsf)
    if fn == "time_since_last":
        out[:, off] = np.maximum.reduceat(np.where(mask, tsf, -math.inf), starts)


def _last(
    out: F64,
    off: int,
    starts: npt.NDArray[np.intp],
    mask: npt.NDArray[np.bool_],
    values: F64,
    tsf: F64,
) -> None:
    ends = [*starts[1:], len(tsf)]
    for run, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
        best_ts, best_val = -math.inf, math.nan
        for t, v, ok in zip(tsf[lo:hi], values[lo:hi], mask[lo:hi], strict=True):
            if ok and (t > best_ts or (t == best_ts and v > best_val)):
                best_ts, best_val = t, v
        out[run, off], out[run, off + 1] = best_ts, best_val


def merge_many(layout: Layout, stack: F64) -> F64:
    """Merge the partials stacked as rows of ``stack`` into one (vectorised).

    Three reductions over whole rows, then each field takes the one of its kind: fewer
    NumPy calls than reducing each kind's columns apart, which is what reads pay for.
    """
    if len(stack) == 1:
        single: F64 = stack[0].copy()
        return single
    if len(stack) == 0:
        return layout.empty()
    is_add, is_min = layout.masks
    out: F64 = np.where(
        is_add, stack.sum(axis=0), np.where(is_min, stack.min(axis=0), stack.max(axis=0))
    )
    for ts_i in layout.columns[3]:
        ts, val = stack[:, ts_i], stack[:, ts_i + 1]
        best = np.lexsort((np.nan_to_num(val, nan=-math.inf), ts))[-1]
        out[ts_i], out[ts_i + 1] = ts[best], val[best]
    return out
