"""The tile rings' inner loops, compiled with numba.

Merging partials field by field is a short loop per tile; in NumPy each step is a
whole-array call that costs more than the arithmetic, so reads (a window of a few dozen
tiles) and updates (a scatter of a micro-batch's runs into the rings) run here instead.
The merge rules are the kernel's (:mod:`loopline.features.kernel`): add, min, max, and
the latest (timestamp, value) pair, ties to the larger value.

Finalizing, a merged partial to a feature value, is :func:`finalize_value`, the one copy
of that arithmetic: the compiled row read calls it, and so do the other read paths, from
Python (the offline engine writes the same rule in SQL).

Compiled on first use and cached next to this file, so only a fresh install pays.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

from loopline.features.kernel import ADD, FINALIZE_CODES, LAST_TS, MAX, MIN, VARIANCE_FLOOR

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
DROPPED, MERGED, FRESH = 0, 1, 2  # what merge_runs did with each run
_COUNT, _SUM, _MEAN, _STD, _MIN, _MAX, _LAST, _SINCE, _DISTINCT = (
    FINALIZE_CODES[f]
    for f in ("count", "sum", "mean", "std", "min", "max", "last", "time_since_last",
              "distinct_count")
)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _merge_row(out: F64, row: F64, kinds: npt.NDArray[np.int8]) -> None:
    for j in range(len(kinds)):
        kind = kinds[j]
        if kind == ADD:
            out[j] += row[j]
        elif kind == MIN:
            out[j] = min(out[j], row[j])
        elif kind == MAX:
            out[j] = max(out[j], row[j])
        elif kind == LAST_TS:
            mine, theirs = out[j + 1], row[j + 1]
            mine = -math.inf if math.isnan(mine) else mine
            theirs = -math.inf if math.isnan(theirs) else theirs
            if row[j] > out[j] or (row[j] == out[j] and theirs > mine):
                out[j], out[j + 1] = row[j], row[j + 1]
        # LAST_VAL moves with its timestamp


@numba.njit(cache=True, nogil=True)
def window_merge(
    ids: I64,
    data: F64,
    kinds: npt.NDArray[np.int8],
    head: int,
    tiles: int,
    out: F64,
    picked: I64,
) -> int:
    """Merge into ``out`` (the empty partial) the ring row's tiles ``head - tiles + 1 ..
    head``; their positions go to ``picked``; returns how many."""
    n = 0
    for p in range(len(ids)):
        if head - tiles < ids[p] <= head:
            _merge_row(out, data[p], kinds)
            picked[n] = p
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def merge_runs(
    tile_ids: I64,
    data: F64,
    newest: I64,
    slots: I64,
    tiles: I64,
    parts: F64,
    kinds: npt.NDArray[np.int8],
    empty: F64,
    status: npt.NDArray[np.int8],
) -> None:
    """Merge each run's partial into the ring at (slot, tile % R), in order: a newer tile
    evicts the one in its position, an older one is dropped (``status`` says which)."""
    ring = tile_ids.shape[1]
    for r in range(len(slots)):
        s, k = slots[r], tiles[r]
        p = k % ring
        if k < tile_ids[s, p]:
            status[r] = DROPPED
            continue
        if k > tile_ids[s, p]:
            tile_ids[s, p] = k
            data[s, p, :] = empty
            status[r] = FRESH
        else:
            status[r] = MERGED
        _merge_row(data[s, p], parts[r], kinds)
        newest[s] = max(newest[s], k)


@numba.njit(cache=True, nogil=True)
def windows_merge(
    ids: I64,
    data: F64,
    newest: I64,
    kinds: npt.NDArray[np.int8],
    slots: I64,
    heads: I64,
    tiles: int,
    out: F64,
    picked: I64,
    counts: I64,
) -> None:
    """Many reads of one ring at once: for each row ``i``, merge into ``out[i]`` the tiles
    ``heads[i] - tiles + 1 .. heads[i]`` of slot ``slots[i]`` (-1: no such entity), their
    positions into ``picked[i]`` and how many into ``counts[i]`` (added to what is there:
    calls for several partitions accumulate)."""
    for i in range(len(slots)):
        s = slots[i]
        if s < 0 or s >= ids.shape[0] or newest[s] <= heads[i] - tiles:
            continue
        n = counts[i]
        for p in range(ids.shape[1]):
            k = ids[s, p]
            if heads[i] - tiles < k <= heads[i]:
                _merge_row(out[i], data[s, p], kinds)
                if n < picked.shape[1]:
                    picked[i, n] = p
                n += 1
        counts[i] = n


@numba.njit(cache=True, nogil=True)
def copy_rows(dst_ids: I64, dst_data: F64, src_ids: I64, src_data: F64, rows: I64) -> None:
    """Copy the slots ``rows`` of a ring (tile ids and data) into another of its shape,
    in place: no temporary arrays, so no fresh pages to fault in."""
    for r in rows:
        dst_ids[r, :] = src_ids[r, :]
        dst_data[r, :, :] = src_data[r, :, :]


@numba.njit(cache=True, nogil=True)
def copy_cells(
    dst_ids: I64, dst_data: F64, src_ids: I64, src_data: F64, rows: I64, positions: I64
) -> None:
    """Copy the tiles at (``rows[i]``, ``positions[i]``) of a ring into another of its
    shape, in place (:func:`copy_rows` for single tiles)."""
    for i in range(len(rows)):
        r, p = rows[i], positions[i]
        dst_ids[r, p] = src_ids[r, p]
        dst_data[r, p, :] = src_data[r, p, :]


@numba.njit(cache=True, nogil=True)
def finalize_value(code: int, merged: F64, off: int, read_ms: int) -> float:
    """The value read at ``read_ms`` of the aggregation ``code`` (``FINALIZE_CODES``) whose
    fields start at ``off`` of the merged partial ``merged``: NaN where the window holds
    no value (0 for counts and sums). Distinct counts are the caller's, the size of the
    union of sets (NaN here)."""
    value: float = merged[off]
    if code in (_COUNT, _SUM):
        return value
    if code in (_MEAN, _STD):
        n, s = merged[off], merged[off + 1]
        if n == 0:
            return math.nan
        if code == _MEAN:
            mean: float = s / n
            return mean
        second = merged[off + 2] / n
        variance = second - (s / n) ** 2
        # below the noise of the subtraction it is zero (equal values): both engines agree
        return math.sqrt(variance) if variance > VARIANCE_FLOOR * second else 0.0
    if code in (_MIN, _MAX):
        return value if math.isfinite(value) else math.nan
    if code == _LAST:
        last: float = merged[off + 1]
        return last
    if code == _SINCE:
        return read_ms - value if math.isfinite(value) else math.nan
    return math.nan


@numba.njit(cache=True, nogil=True)
def finalize_rows(code: int, merged: F64, off: int, read_ms: I64) -> F64:
    """:func:`finalize_value` of each row of ``merged`` (one partial per row), row ``i``
    read at ``read_ms[i]``."""
    out = np.empty(len(merged))
    for i in range(len(merged)):
        out[i] = finalize_value(code, merged[i], off, read_ms[i])
    return out


@numba.njit(cache=True, nogil=True)
def read_row(
    ids: I64,
    data: F64,
    kinds: npt.NDArray[np.int8],
    empty: F64,
    head: int,
    tiles: I64,
    merged: F64,
    picked: I64,
    counts: I64,
    codes: npt.NDArray[np.int8],
    groups: I64,
    offsets: I64,
    slots: I64,
    read_ms: int,
    out: F64,
) -> float:
    """One entity's every window of one hop from its ring row in one pass: group ``g``
    merges the tiles ``head - tiles[g] + 1 .. head`` into ``merged[g]`` (their positions
    into ``picked[g]``, how many into ``counts[g]``); feature ``j`` (of group
    ``groups[j]``, fields at ``offsets[j]``) is finalized into ``out[slots[j]]``. Returns
    the newest event time merged (-inf: none)."""
    for g in range(len(tiles)):
        merged[g, :] = empty
        counts[g] = 0
    for p in range(len(ids)):
        k = ids[p]
        for g in range(len(tiles)):
            if head - tiles[g] < k <= head:
                _merge_row(merged[g], data[p], kinds)
                picked[g, counts[g]] = p
                counts[g] += 1
    newest = -math.inf
    for g in range(len(tiles)):
        newest = max(newest, merged[g, merged.shape[1] - 1])
    for j in range(len(codes)):
        out[slots[j]] = finalize_value(codes[j], merged[groups[j]], offsets[j], read_ms)
    return newest


@numba.njit(cache=True, nogil=True)
def merge_codes(
    keys: I64, which: I64, codes: I64, dropped: npt.NDArray[np.bool_],
    new_keys: I64, new_which: I64, new_codes: I64,
) -> tuple[I64, I64, I64]:  # fmt: skip
    """Two sorted (key, which, code) tables as one, sorted and unique: the first without
    its ``dropped`` entries, the second (sorted too) added. One pass, no sort."""
    n = len(keys) + len(new_keys)
    k, w, c = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    i = j = m = 0
    while i < len(keys) or j < len(new_keys):
        if i < len(keys) and dropped[i]:
            i += 1
            continue
        take_old = j >= len(new_keys) or (
            i < len(keys)
            and (keys[i], which[i], codes[i]) <= (new_keys[j], new_which[j], new_codes[j])
        )
        if take_old:
            a, b, d = keys[i], which[i], codes[i]
            i += 1
        else:
            a, b, d = new_keys[j], new_which[j], new_codes[j]
            j += 1
        if m == 0 or a != k[m - 1] or b != w[m - 1] or d != c[m - 1]:
            k[m], w[m], c[m] = a, b, d
            m += 1
    return k[:m], w[:m], c[:m]
