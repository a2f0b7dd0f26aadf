"""Exact distinct counts without Python objects per tile.

A value is represented by a 64-bit code (BLAKE2b of a type-tagged encoding: stable
across processes, so codes can be stored; numbers by their float64 value, as Python's
sets compare them). Two different values share a code with probability ~2^-64 per pair:
at a million distinct values in one window, ~3e-8 that the count is off by one.

A ring keeps every tile's codes in one :class:`CodeTable`: three sorted integer arrays,
(slot * R + position, distinct aggregation, code), unique. Merging a batch, evicting a
tile, releasing a slot are array operations, and the arrays are outside the garbage
collector's reach (a Python set per tile was ~40 % of the update time, and full
collections walked hundreds of thousands of them). A read gathers the picked tiles'
codes into small sets, one per aggregation, that live for that read only.
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


_known: dict[object, int] = {}  # value -> code, for values met again (bounded)
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
    """Every tile's distinct-value codes of one ring (``ring`` positions a slot)."""

    def __init__(self, ring: int, keys: I64 | None = None, which: I64 | None = None,
                 codes: I64 | None = None) -> None:  # fmt: skip
        self.ring = ring
        self.keys = keys if keys is not None else np.empty(0, np.int64)  # slot * R + position
        self.which = which if which is not None else np.empty(0, np.int64)  # the aggregation
        self.codes = codes if codes is not None else np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self.keys)

    def merge(self, keys: I64, which: I64, codes: I64, fresh: I64) -> None:
        """Add codes at ``keys`` (slot * R + position); the tiles at ``fresh`` keys were
        replaced by newer ones first: their old codes go. The table stays sorted: the new
        entries are sorted, then merged in one compiled pass."""
        from loopline.features import compiled

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

    def drop_slots(self, slots: I64) -> None:
        """Forget every code of ``slots``."""
        if len(self.keys) and len(slots):
            kept = ~np.isin(self.keys // self.ring, slots)
            self.keys, self.which, self.codes = self.keys[kept], self.which[kept], self.codes[kept]

    def union(self, slot: int, positions: list[int], count: int) -> list[set[int]]:
        """The codes of ``slot``'s tiles at ``positions``, one set per aggregation."""
        out: list[set[int]] = [set() for _ in range(count)]
        if not len(self.keys) or not positions:
            return out
        wanted = slot * self.ring + np.asarray(positions, dtype=np.int64)
        lo = np.searchsorted(self.keys, wanted, side="left")
        hi = np.searchsorted(self.keys, wanted, side="right")
        for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
            for d, code in zip(self.which[a:b].tolist(), self.codes[a:b].tolist(), strict=True):
                out[d].add(code)
        return out

    def of_slot(self, slot: int) -> tuple[I64, I64, I64]:
        """``slot``'s entries: (position, aggregation, code)."""
        lo, hi = np.searchsorted(self.keys, [slot * self.ring, (slot + 1) * self.ring])
        return self.keys[lo:hi] - slot * self.ring, self.which[lo:hi], self.codes[lo:hi]

    def put_slot(self, slot: int, positions: I64, which: I64, codes: I64) -> None:
        """Set ``slot``'s entries (a stored row read back)."""
        self.drop_slots(np.array([slot]))
        self.merge(slot * self.ring + positions, which, codes, np.empty(0, np.int64))

    def arrays(self) -> I64:
        """The table as one (3, n) array, to store."""
        return np.stack([self.keys, self.which, self.codes])

    @classmethod
    def from_arrays(cls, ring: int, stacked: I64) -> CodeTable:
        table = cls(ring)
        keys, which, codes = stacked.reshape(3, -1)
        table.merge(keys, which, codes, np.empty(0, dtype=np.int64))
        return table
