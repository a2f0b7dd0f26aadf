"""The Redis online store's stored layout, format 3: one hash per ring, one field per tile.

A ring of one entity (view version, hop, source partition) is the hash
``ll:t:{p<partition>}:<version>:<hop>:<key>``. Its fields are its tile positions, each
named by the position as 4 little-endian bytes, and one metadata field (``META``,
position -1). Every field's value is a record of 8-byte little-endian words:

* word 0: the position (int32) and the record's length in words (int32);
* tile record: the tile id, the ``width`` partials (float64), then its distinct codes,
  ``n`` aggregation numbers followed by ``n`` codes;
* metadata record: :data:`FORMAT`, the ring size, and the wall-clock deadline (Redis
  server time, ms) until which the hash is known not to expire.

A record carries its position and its length, so a script returns many rings' records
as one concatenated string and :func:`decode` splits it with array operations: no Python
work per tile. A batch writes the records of the positions its runs touched, nothing
else; a position's record is replaced when a newer tile takes the position, so a hash
holds at most ``R`` tiles, as the whole-ring string did.

Format 2 (and 1) kept a ring as one msgpack string under ``ll:f:...``: read when no hash
exists (:func:`decode_v2`), and deleted when the ring is next written as a hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgspec
import numba
import numpy as np
import numpy.typing as npt

from loopline.features.distinct import value_code
from loopline.features.kernel import F64
from loopline.features.ring import NO_TILE, TileRing

I64 = npt.NDArray[np.int64]
Row = tuple[I64, F64, I64]  # one ring: tile ids (R,), partials (R, width), (3, n) codes
_NO_CODES = np.empty((3, 0), dtype=np.int64)
FORMAT = 3
META = b"\xff\xff\xff\xff"  # the metadata field: position -1
META_WORDS = 4  # header, format, ring size, deadline


def state_key(version: str, hop: int, partition: int) -> bytes:
    """The key of an entity's ring without the entity key (it follows the last colon)."""
    return f"ll:t:{{p{partition}}}:{version}:{hop}:".encode()


def v2_key(version: str, hop: int, partition: int, key: str) -> str:
    """The key of a format-2 (or 1) ring: one msgpack string."""
    return f"ll:f:{{p{partition}}}:{version}:{hop}:{key}"


# KEYS: rings. ARGV[1]: per ring an int32, how many positions are wanted (-1: every
# field); ARGV[2]: the wanted positions' names, ring after ring. Returns the records
# found, per ring how many (-1: no hash but a format-2 string, returned in the third
# item after its int64 length), and the server's time.
READ = """
local per, names = ARGV[1], ARGV[2]
local counts, recs, olds = {}, {}, {}
local at = 1
for i = 1, #KEYS do
  local n = struct.unpack('<i4', per, 4 * i - 3)
  local got
  if n < 0 then
    got = redis.call('HVALS', KEYS[i])
  else
    local fields = {'\\255\\255\\255\\255'}
    for j = 1, n do
      fields[j + 1] = string.sub(names, at, at + 3)
      at = at + 4
    end
    got = redis.call('HMGET', KEYS[i], unpack(fields))
  end
  local c = 0
  for j = 1, #got do
    if got[j] then
      recs[#recs + 1] = got[j]
      c = c + 1
    end
  end
  if c == 0 then
    local old = redis.call('GET', 'll:f:' .. string.sub(KEYS[i], 6))
    if old then
      olds[#olds + 1] = struct.pack('<i8', #old) .. old
      c = -1
    end
  end
  counts[i] = struct.pack('<i4', c)
end
return {table.concat(counts), table.concat(recs), table.concat(olds), redis.call('TIME')}
"""

# KEYS: rings, then the checkpoint. ARGV[1]: the checkpoint; ARGV[2]: per ring three
# int64, the bytes of its records, the expiry to set (ms, 0: none) and whether a format-2
# string goes; ARGV[3]: the records, ring after ring. One script: atomic, as MULTI/EXEC.
WRITE = """
local index, data = ARGV[2], ARGV[3]
local at = 1
for i = 1, #KEYS - 1 do
  local size, ttl, drop = struct.unpack('<i8i8i8', index, 24 * i - 23)
  local stop = at + size
  local fv = {}
  while at < stop do
    local words = struct.unpack('<i4', data, at + 4)
    fv[#fv + 1] = string.sub(data, at, at + 3)
    fv[#fv + 1] = string.sub(data, at, at + 8 * words - 1)
    at = at + 8 * words
  end
  if #fv > 0 then
    redis.call('HSET', KEYS[i], unpack(fv))
  end
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
  if drop > 0 then
    redis.call('DEL', 'll:f:' .. string.sub(KEYS[i], 6))
  end
end
redis.call('SET', KEYS[#KEYS], ARGV[1])
return #KEYS - 1
"""


def sha(script: str) -> bytes:
    """A script's name for ``EVALSHA``."""
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest().encode()


def command(args: list[bytes]) -> bytes:
    """``args`` as one RESP command (redis-py's packer costs ~3 us an argument)."""
    return b"*%d\r\n" % len(args) + b"".join([b"$%d\r\n%b\r\n" % (len(a), a) for a in args])


@numba.njit(cache=True, nogil=True)
def _starts(words: I64) -> I64:  # pragma: no cover - compiled
    """Where each record of concatenated ``words`` starts (each says its length)."""
    out = np.empty(len(words), dtype=np.int64)
    i = n = 0
    while i < len(words):
        out[n] = i
        n += 1
        i += max(words[i] >> 32, 1)
    return out[:n]


@dataclass
class Records:
    """Records read for one table: per record its ring (index into the read's rings),
    position, tile id and partials; its distinct codes flattened (``code_of``: the
    record each belongs to); per ring the metadata's deadline (-1: none) and size."""

    ring_of: I64
    pos: I64
    tile: I64
    data: F64
    code_of: I64
    which: I64
    codes: I64
    deadline: I64
    size: I64


def split(recs: bytes, counts: npt.NDArray[np.int32]) -> tuple[I64, I64]:
    """The words of a read's records and each record's start; ``counts`` per ring."""
    words = np.frombuffer(recs, dtype="<i8").astype(np.int64, copy=False)
    starts = _starts(words)
    assert len(starts) == np.maximum(counts, 0).sum(), "records and counts disagree"
    return words, starts


def decode(words: I64, starts: I64, counts: npt.NDArray[np.int32], width: int) -> Records:
    """The records at ``starts`` of one table's rings (``counts`` of each)."""
    head = words[starts]
    pos, nw = (head << 32) >> 32, head >> 32  # the low int32, sign-extended; the high
    ring_of = np.repeat(np.arange(len(counts)), np.maximum(counts, 0))
    meta = pos < 0
    deadline = np.full(len(counts), -1, dtype=np.int64)
    size = np.zeros(len(counts), dtype=np.int64)
    deadline[ring_of[meta]] = words[starts[meta] + 3]
    size[ring_of[meta]] = words[starts[meta] + 2]
    tiles = ~meta
    at, nw = starts[tiles], nw[tiles]
    data = words[at[:, None] + 2 + np.arange(width)].view(np.float64)
    n = (nw - 2 - width) // 2
    code_of = np.repeat(np.arange(len(at)), n)
    first = np.repeat(at + 2 + width, n) + _within(n)
    return Records(
        ring_of[tiles], pos[tiles], words[at + 1], data, code_of, words[first],
        words[first + np.repeat(n, n)], deadline, size,
    )  # fmt: skip


def rows(
    recs: bytes, counts: npt.NDArray[np.int32], widths: list[int], olds: list[Row]
) -> list[Row | None]:
    """Each ring of a read as one row (tile ids, partials, (3, n) codes by position),
    one compiled call a ring: the one-key read's path, where :func:`decode` and a ring
    would cost more than the round trip."""
    words, starts = split(recs, counts)
    fwords = words.view(np.float64)
    out: list[Row | None] = []
    at = old = 0
    for c, width in zip(counts.tolist(), widths, strict=True):
        if c > 0:
            out.append(_row(words, fwords, starts[at : at + c], width))
            at += c
        elif c < 0:
            out.append(olds[old])
            old += 1
        else:
            out.append(None)
    return out


@numba.njit(cache=True, nogil=True)
def _row(
    words: I64, fwords: F64, starts: I64, width: int
) -> tuple[I64, F64, I64]:  # pragma: no cover - compiled
    """One ring's records (at ``starts``) as tile ids (R,), partials (R, width) and
    (3, n) codes by position: one compiled call a ring, the one-key read's path."""
    size = n = 0
    for s in starts:
        pos = (words[s] << 32) >> 32
        if pos < 0:
            size = max(size, words[s + 2])
        else:
            size = max(size, pos + 1)
            n += ((words[s] >> 32) - 2 - width) // 2
    ids = np.full(size, NO_TILE, dtype=np.int64)
    data = np.zeros((size, width))
    codes = np.empty((3, n), dtype=np.int64)
    c = 0
    for s in starts:
        pos = (words[s] << 32) >> 32
        if pos < 0:
            continue
        ids[pos] = words[s + 1]
        for j in range(width):
            data[pos, j] = fwords[s + 2 + j]
        k = ((words[s] >> 32) - 2 - width) // 2
        for i in range(k):
            codes[0, c] = pos
            codes[1, c] = words[s + 2 + width + i]
            codes[2, c] = words[s + 2 + width + k + i]
            c += 1
    return ids, data, codes


def decode_one(raw: bytes, width: int) -> Records:
    """The records of one ring."""
    words = np.frombuffer(raw, dtype="<i8").astype(np.int64, copy=False)
    starts = _starts(words)
    return decode(words, starts, np.array([len(starts)], dtype=np.int32), width)


def _within(n: I64) -> I64:
    """0 .. n[i] - 1 for each i, concatenated."""
    total = int(n.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)


def fill(ring: TileRing, found: Records, slots: I64) -> None:
    """Records into ``ring`` (one block), ring ``i`` of the read into slot ``slots[i]``;
    their positions' codes replace any already there (records staged since)."""
    s = slots[found.ring_of]
    ring.ids[0][s, found.pos] = found.tile
    ring.values[0][s, found.pos] = found.data
    np.maximum.at(ring.newest[0], s, found.tile)
    keys = s * ring.ring + found.pos
    if ring.layout.distinct and len(keys):
        ring.codes.merge(keys[found.code_of], found.which, found.codes, np.unique(keys))


def encode(
    ring: TileRing, slots: I64, pos: I64, metas: I64, meta: tuple[int, int]
) -> tuple[bytes, I64]:
    """The records of positions ``pos`` of ``slots`` (sorted by slot) and, first in each
    of theirs, a metadata record for ``metas`` (sorted slots): (ring size, deadline).
    Returns them and the bytes of each ring's, in order of slot."""
    width, r = ring.layout.width, ring.ring
    n = np.zeros(len(slots), dtype=np.int64)
    which = codes = np.empty(0, dtype=np.int64)
    if ring.layout.distinct:
        columns = ring.codes.columns()
        stored, which, codes = (
            np.concatenate(columns).reshape(3, -1) if columns else np.empty((3, 0), np.int64)
        )
        keys = slots * r + pos
        lo = np.searchsorted(stored, keys, side="left")
        n = np.searchsorted(stored, keys, side="right") - lo
        picked = np.repeat(lo, n) + _within(n)
        which, codes = which[picked], codes[picked]
    nw = 2 + width + 2 * n
    # each slot's records together, its metadata first (as position -1)
    all_slots = np.r_[metas, slots]
    all_nw = np.r_[np.full(len(metas), META_WORDS, dtype=np.int64), nw]
    order = np.argsort(all_slots * (r + 1) + np.r_[np.full(len(metas), -1), pos], kind="stable")
    at = np.empty(len(order), dtype=np.int64)
    at[order] = np.cumsum(all_nw[order]) - all_nw[order]
    words = np.zeros(int(all_nw.sum()), dtype=np.int64)
    m_at, t_at = at[: len(metas)], at[len(metas) :]
    words[m_at] = 0xFFFFFFFF | META_WORDS << 32
    words[m_at + 1], words[m_at + 2], words[m_at + 3] = FORMAT, meta[0], meta[1]
    words[t_at] = (pos & 0xFFFFFFFF) | (nw << 32)
    words[t_at + 1] = ring.ids[0][slots, pos]
    words[t_at[:, None] + 2 + np.arange(width)] = ring.values[0][slots, pos].view(np.int64)
    first = np.repeat(t_at + 2 + width, n) + _within(n)
    words[first] = which
    words[first + np.repeat(n, n)] = codes
    _, ring_of = np.unique(all_slots, return_inverse=True)
    size = np.bincount(ring_of, weights=all_nw * 8).astype(np.int64)
    return words.astype("<i8", copy=False).tobytes(), size


def decode_v2(raw: bytes) -> tuple[I64, F64, I64]:
    """Tile ids, partials and (3, n) distinct codes of a format-2 (or 1) string (format 1
    kept the distinct values themselves: they are hashed here)."""
    found = msgspec.msgpack.decode(raw)
    ids = np.frombuffer(found[0], dtype=np.int64)
    data = np.frombuffer(found[1], dtype=np.float64)
    if len(found) == 4:
        return ids, data, np.frombuffer(found[2], dtype=np.int64).reshape(3, -1)
    entries = [
        (int(pos), d, value_code(v))
        for pos, values in (found[2] or {}).items()
        for d, held in enumerate(values)
        for v in held
    ]
    return ids, data, np.array(entries, dtype=np.int64).reshape(-1, 3).T


def olds_of(olds: bytes) -> list[tuple[I64, F64, I64]]:
    """The format-2 strings of a read (each after its int64 length), decoded."""
    out, at = [], 0
    while at < len(olds):
        size = int.from_bytes(olds[at : at + 8], "little")
        out.append(decode_v2(olds[at + 8 : at + 8 + size]))
        at += 8 + size
    return out


def fill_v2(ring: TileRing, found: list[tuple[I64, F64, I64]], slots: list[int]) -> None:
    """Decoded format-2 rings into ``slots`` of ``ring``, their codes in one merge."""
    codes = []
    for slot, (ids, data, held) in zip(slots, found, strict=True):
        ring.put_row(slot, ids, data)
        if held.shape[1]:
            codes.append(held + np.array([[slot * ring.ring], [0], [0]]))
    if codes:
        keys, which, values = np.concatenate(codes, axis=1)
        ring.codes.merge(keys, which, values, np.empty(0, dtype=np.int64))
