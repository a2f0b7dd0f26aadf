"""Exact distinct counts without Python objects per tile.

A value is represented by a 64-bit code (BLAKE2b of a type-tagged encoding: stable
across processes, so codes can be stored; numbers by their float64 value, as Python's
sets compare them). Two different values share a code with probability ~2^-64 per pair:
at a million distinct values in one window, ~3e-8 that the count is off by one.

A ring keeps every tile's codes in one :class:`CodeTable`: per block of slots, three
sorted integer arrays, (slot * R + position, distinct aggregation, code), unique.
Merging a batch, evicting a tile, releasing a slot are array operations, and the arrays
are outside the garbage collector's reach (a Python set per tile was ~40 % of the update
time, and full collections walked hundreds of thousands of them). A read gathers the
picked tiles' codes into small sets, one per aggregation, that live for that read only.
"""

from __future__ import annotations

import hashlib
import math
import numbers

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
# a batch's codes: (run, distinct aggregation, code), unique, sorted by run
Codes = tuple[I64, I64, I64]
NO_CODES: Codes = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))


def value_code(value: object) -> int:
    """The stored code of one value."""
    if isinstance(value, str):
        raw = b"s" + value.encode()
    elif isinstance(value, bytes):
        raw = b"b" + value
    elif isinstance(value, numbers.Real):
        number = float(value) + 0.0  # -0.0 == 0.0, as in a set
        raw = b"f" + (b"nan" if math.isnan(number) else np.float64(number).tobytes())
    else:
        raw = b"r" + repr(value).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little", signed=True)


# value -> code, for values met again: bounded, and in this process's memory only (the
# stores keep codes, never values)
_known: dict[object, int] = {}
_KNOWN_MAX = 1 << 20


def value_codes(values: npt.NDArray[np.generic]) -> I64:
    """The code of each value: one lookup (or hash) per distinct value of the array."""
    if not len(values):
        return np.empty(0, dtype=np.int64)
    unique, inverse = np.unique(values, return_inverse=True)
    if len(_known) > _KNOWN_MAX:
        _known.clear()
    get = _known.get
    hashed = np.fromiter(
        (c if (c := get(v)) is not None else _known.setdefault(v, value_code(v))
         for v in unique.tolist()),
        np.int64,
        len(unique),
    )  # fmt: skip
    codes: I64 = hashed[inverse.reshape(-1)]
    return codes


def run_sets(codes: Codes, runs: int, count: int) -> list[list[set[int]]]:
    """Per run, one set of codes per distinct aggregation (a one-event read's own)."""
    out: list[list[set[int]]] = [[set() for _ in range(count)] for _ in range(runs)]
    for run, d, code in zip(*(c.tolist() for c in codes), strict=True):
        out[run][d].add(code)
    return out


class CodeTable:
    """Every tile's distinct-value codes of one ring (``ring`` positions a slot), in one
    sorted part per block of ``block`` slots (all in one without): a merge rewrites the
    parts its slots are in, not the whole table. A part's arrays are replaced, never
    written in place, so a snapshot can hold them without a copy."""

    def __init__(self, ring: int, block: int | None = None) -> None:
        self.ring = ring
        self.span = ring * block if block else None  # keys per part
        self.parts: dict[int, _Part] = {}

    def __len__(self) -> int:
        return sum(len(p.keys) for p in self.parts.values())

    def merge(self, keys: I64, which: I64, codes: I64, fresh: I64) -> None:
        """Add codes at ``keys`` (slot * R + position); the tiles at ``fresh`` keys were
        replaced by newer ones first: their old codes go."""
        for part, (k, w, c, f) in self._split(keys, (keys, which, codes), fresh):
            self.parts.setdefault(part, _Part()).merge(k, w, c, f)

    def drop_slots(self, slots: I64) -> None:
        """Forget every code of ``slots``."""
        keys = slots * self.ring
        for part, (s, _, _, _) in self._split(keys, (slots, slots, slots), keys[:0]):
            if part in self.parts:
                self.parts[part].drop(s, self.ring)

    def union(self, slot: int, positions: list[int], count: int) -> list[set[int]]:
        """The codes of ``slot``'s tiles at ``positions``, one set per aggregation."""
        out: list[set[int]] = [set() for _ in range(count)]
        part = self.parts.get(self._part(slot * self.ring))
        if part is None or not positions:
            return out
        wanted = slot * self.ring + np.asarray(positions, dtype=np.int64)
        lo = np.searchsorted(part.keys, wanted, side="left")
        hi = np.searchsorted(part.keys, wanted, side="right")
        for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
            for d, code in zip(part.which[a:b].tolist(), part.codes[a:b].tolist(), strict=True):
                out[d].add(code)
        return out

    def of_slot(self, slot: int) -> tuple[I64, I64, I64]:
        """``slot``'s entries: (position, aggregation, code)."""
        part = self.parts.get(self._part(slot * self.ring), _Part())
        lo, hi = np.searchsorted(part.keys, [slot * self.ring, (slot + 1) * self.ring])
        return part.keys[lo:hi] - slot * self.ring, part.which[lo:hi], part.codes[lo:hi]

    def columns(self) -> list[I64]:
        """The table's keys, aggregations and codes, part after part: concatenated, the
        (3, n) array :meth:`from_arrays` reads (the parts are in key order)."""
        parts = [self.parts[p] for p in sorted(self.parts)]
        return [*(p.keys for p in parts), *(p.which for p in parts), *(p.codes for p in parts)]

    def arrays(self) -> I64:
        """The table as one (3, n) array, to store."""
        return np.concatenate(self.columns()).reshape(3, -1)

    @classmethod
    def from_arrays(cls, ring: int, stacked: I64, block: int | None = None) -> CodeTable:
        table = cls(ring, block)
        keys, which, codes = stacked.reshape(3, -1)
        table.merge(keys, which, codes, np.empty(0, dtype=np.int64))
        return table

    def _part(self, key: int) -> int:
        return key // self.span if self.span else 0

    def _split(
        self, keys: I64, arrays: tuple[I64, I64, I64], fresh: I64
    ) -> list[tuple[int, tuple[I64, I64, I64, I64]]]:
        """``arrays`` (indexed like ``keys``) and ``fresh`` cut by part."""
        if not self.span:
            return [(0, (*arrays, fresh))]
        parts, fresh_parts = keys // self.span, fresh // self.span
        found = np.unique(np.r_[parts, fresh_parts])
        if len(found) == 1:
            return [(int(found[0]), (*arrays, fresh))]
        out = []
        for p in found.tolist():
            mine = parts == p
            k, w, c = (a[mine] for a in arrays)
            out.append((p, (k, w, c, fresh[fresh_parts == p])))
        return out


class _Part:
    """One sorted, unique (key, aggregation, code) table."""

    def __init__(self) -> None:
        self.keys = np.empty(0, np.int64)  # slot * R + position
        self.which = np.empty(0, np.int64)  # the distinct aggregation
        self.codes = np.empty(0, np.int64)

    def merge(self, keys: I64, which: I64, codes: I64, fresh: I64) -> None:
        """The new entries sorted, then merged in one compiled pass; the entries at
        ``fresh`` keys dropped first."""
        from loopline.features import compiled  # it imports the kernel, which imports us

        dropped = np.zeros(len(self.keys), dtype=np.bool_)
        if len(fresh) and len(self.keys):
            fresh = np.unique(fresh)
            lo = np.searchsorted(self.keys, fresh, side="left")
            hi = np.searchsorted(self.keys, fresh, side="right")
            marks = np.zeros(len(self.keys) + 1, dtype=np.int64)
            np.add.at(marks, lo, 1)
            np.add.at(marks, hi, -1)
            dropped = np.cumsum(marks[:-1]) > 0
        order = np.lexsort((codes, which, keys))
        self.keys, self.which, self.codes = compiled.merge_codes(
            self.keys, self.which, self.codes, dropped,
            np.ascontiguousarray(keys[order], dtype=np.int64),
            np.ascontiguousarray(which[order], dtype=np.int64),
            np.ascontiguousarray(codes[order], dtype=np.int64),
        )  # fmt: skip

    def drop(self, slots: I64, ring: int) -> None:
        if len(self.keys) and len(slots):
            kept = ~np.isin(self.keys // ring, slots)
            self.keys, self.which, self.codes = self.keys[kept], self.which[kept], self.codes[kept]
