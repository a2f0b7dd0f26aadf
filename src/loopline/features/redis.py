"""The Redis online store (``pip install loopline[redis]``), for serving from many processes.

One entity's ring of one (view version, hop, source partition) is one Redis hash with a
field per tile position (:mod:`loopline.features.redis_layout`, format 3; a ``last_n``
list ring likewise, under its table's negative number in place of the hop). Keys are
hash-tagged by partition, ``ll:t:{p<partition>}:...``, so everything a partition's worker
writes, states and checkpoint, sits in one Cluster slot and commits atomically. Readers
learn which partitions hold a view's state from a set, cached for a second: a
partition's very first state can reach readers in other processes up to 1 s late.

One worker owns a partition, so read-modify-write needs no locks: ``apply`` reads the
positions its runs touch of every ring it touches (one script, one round trip), merges
with the same vectorised kernel, and stages the records of those positions only;
``commit`` writes them and the checkpoint in one script (atomic, as ``MULTI``/``EXEC``).
Both scripts take and return whole batches as packed arrays: a ring costs the server one
``HMGET`` and one ``HSET``, and Python no work of its own (whole-ring strings, a
``SET`` each in a transaction, cost ~50 us a ring, most of it in redis-py).

Each ring expires two ring spans (twice the longest window of its view, in wall time)
after its last write, up to a quarter span later: the expiry is set to 2.25 spans and
renewed by the first write that finds less than two left (its deadline is in the ring's
metadata), so most writes set none. The embedded store releases idle entities alike:
Redis's memory follows the active entities. A worker stopped for longer than that loses
the state it would have resumed; its view's window has passed by then anyway, unless
the stream is being replayed far behind the present.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from loopline.exceptions import BackendUnavailableError
from loopline.features import redis_layout as layout_
from loopline.features.base import ManyRead, ManyValues, ManyWindows, Runs, Window, WindowValue
from loopline.features.distinct import CodeTable
from loopline.features.kernel import F64, Layout
from loopline.features.redis_layout import FORMAT
from loopline.features.ring import NO_TILE, TileRing, combine, make_ring, window_of, windows_of
from loopline.servers.credentials import masked

__all__ = ["FORMAT", "RedisStore"]

_PARTITIONS_TTL_S = 1.0
_SCRIPTS = {layout_.sha(s): s for s in (layout_.READ, layout_.WRITE)}
_READ, _WRITE = layout_.sha(layout_.READ), layout_.sha(layout_.WRITE)
I64 = npt.NDArray[np.int64]


def _checkpoint_key(partition: int) -> str:
    return f"ll:f:{{p{partition}}}:checkpoint"


def _partitions_key(version: str) -> str:
    return f"ll:f:partitions:{version}"


@dataclass
class _Group:
    """The rings of one table that one read asks for: ``names[i]`` goes to slot
    ``slots[i]`` of a ring of ``capacity`` slots; ``wanted[i]`` positions of it (None:
    all of every ring)."""

    layout: Layout
    names: list[bytes]
    slots: I64
    capacity: int
    size: int | None = None  # the ring size, None: the stored one
    wanted: tuple[I64, I64] | None = None  # per ring how many, the positions
    hop: int = 0
    migrated: list[int] = field(default_factory=list)  # slots read from format 2
    found: npt.NDArray[np.bool_] | None = None  # which rings were there


@dataclass
class _Staged:
    """One table's records staged by ``apply`` for the next ``commit``."""

    names: list[bytes]
    index: bytes  # per ring: bytes, expiry to set (ms, 0: none), drop format 2 (0/1)
    data: bytes
    width: int
    sizes: I64
    at: dict[bytes, tuple[int, int]] | None = None  # name: (offset, bytes), on demand

    def records_of(self, name: bytes) -> bytes | None:
        if self.at is None:
            ends = np.cumsum(self.sizes)
            self.at = {
                n: (e - s, s)
                for n, e, s in zip(self.names, ends.tolist(), self.sizes.tolist(), strict=True)
            }
        found = self.at.get(name)
        return None if found is None else self.data[found[0] : found[0] + found[1]]


class RedisStore:
    """Online state in Redis.

    Args:
        url: ``redis://host:port/db``.
        timeout_s: Deadline for connecting and for each command.
    """

    remote = True

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self.url = masked(url)  # for messages: the password stays out of them
        self.timeout_s = timeout_s
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._pending: dict[int, list[_Staged]] = {}
        self._staged: dict[int, set[bytes]] = {}  # per partition the names in _pending
        self._pending_versions: dict[int, set[str]] = {}
        self._partitions: dict[str, tuple[float, list[int]]] = {}
        self._call(self._redis.ping)

    def _call(self, fn: object, *args: object) -> object:
        try:
            return fn(*args)  # type: ignore[operator]
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise BackendUnavailableError(
                f"Redis online store at {self.url} did not answer within {self.timeout_s:g}s "
                f"({exc}). Check that redis-server runs and that the address is right."
            ) from None

    def _eval(self, script: bytes, keys: list[bytes], args: list[bytes]) -> list[Any]:
        """Run a script by its SHA-1 (loaded first where the server lacks it), packed
        here: a batch's arguments are ~100k keys."""
        packed = layout_.command([b"EVALSHA", script, b"%d" % len(keys), *keys, *args])
        try:
            return self._call(self._send, packed)  # type: ignore[return-value]
        except NoScriptError:
            self._call(self._redis.script_load, _SCRIPTS[script])
            return self._call(self._send, packed)  # type: ignore[return-value]

    def _send(self, packed: bytes) -> object:
        pool = self._redis.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([packed])  # type: ignore[no-untyped-call]
            return conn.read_response()
        except (RedisConnectionError, RedisTimeoutError):
            conn.disconnect()  # type: ignore[no-untyped-call]  # a reply may still come: never read it as the next one's
            raise
        finally:
            pool.release(conn)

    def apply(self, keys: npt.NDArray[np.generic], runs: Sequence[Runs]) -> None:
        if not runs:
            return
        partition = runs[0].table.partition
        entities = [str(k).encode() for k in keys.tolist()]
        groups = [_group(r, entities, len(keys)) for r in runs]
        loaded, now_ms = self._load(groups)
        staged = self._pending.setdefault(partition, [])
        names = self._staged.setdefault(partition, set())
        for r, g, (ring, deadline) in zip(runs, groups, loaded, strict=True):
            assert ring is not None  # a table's size is known
            _restage(ring, g, staged, names)  # records staged since the last commit
            ring.merge_runs(r.codes.astype(np.int64), r.tiles, r.parts, r.distinct)
            staged.append(_stage(r, g, ring, deadline, now_ms))
            names.update(g.names)
            self._pending_versions.setdefault(partition, set()).add(r.table.version)

    def _load(self, groups: list[_Group]) -> tuple[list[tuple[TileRing | None, I64]], int]:
        """Read the groups' rings in one script: per group a ring holding what was found
        (None: nothing, where its size is the stored one) and each ring's metadata
        deadline (-1: none); and the server's time, ms."""
        names = [n for g in groups for n in g.names]
        if not names:
            return [(None, np.empty(0, dtype=np.int64)) for _ in groups], 0
        per = np.concatenate(
            [g.wanted[0] if g.wanted else np.full(len(g.names), -1) for g in groups]
        )
        wanted = b"".join(g.wanted[1].astype("<i4").tobytes() for g in groups if g.wanted)
        reply = self._eval(_READ, names, [per.astype("<i4").tobytes(), wanted])
        raw_counts, recs, raw_olds, (seconds, micros) = reply
        counts = np.frombuffer(raw_counts, dtype=np.int32)
        words, starts = layout_.split(recs, counts)
        olds = layout_.olds_of(raw_olds)
        out: list[tuple[TileRing | None, I64]] = []
        at = rec = old = 0
        for g in groups:
            mine = counts[at : at + len(g.names)]
            at, held = at + len(g.names), int(np.maximum(mine, 0).sum())
            found = layout_.decode(words, starts[rec : rec + held], mine, g.layout.width)
            rec, v2 = rec + held, np.flatnonzero(mine < 0)
            g.migrated, g.found = g.slots[v2].tolist(), mine != 0
            v2_found, old = olds[old : old + len(v2)], old + len(v2)
            size = g.size or max([*found.size.tolist(), *(found.pos + 1).tolist()]
                                 + [len(ids) for ids, _, _ in v2_found], default=0)  # fmt: skip
            if not size:
                out.append((None, found.deadline))
                continue
            ring = make_ring(g.layout, size, capacity=g.capacity)
            layout_.fill(ring, found, g.slots)
            layout_.fill_v2(ring, v2_found, g.migrated)
            out.append((ring, found.deadline))
        return out, int(seconds) * 1000 + int(micros) // 1000

    def commit(self, partition: int, checkpoint: bytes) -> None:
        staged = self._pending.get(partition, [])
        names = [n for s in staged for n in s.names]  # the partition's keys share a slot
        index, data = b"".join(s.index for s in staged), b"".join(s.data for s in staged)
        self._eval(_WRITE, [*names, _checkpoint_key(partition).encode()], [checkpoint, index, data])
        for version in self._pending_versions.pop(partition, set()):  # outside the slot
            if partition not in self._partitions_of(version):  # known: no round trip
                self._call(self._redis.sadd, _partitions_key(version), partition)
                self._partitions.pop(version, None)
        self._pending.pop(partition, None)
        self._staged.pop(partition, None)

    def checkpoint(self, partition: int) -> bytes | None:
        raw = self._call(self._redis.get, _checkpoint_key(partition))
        return raw if isinstance(raw, bytes) else None

    def _partitions_of(self, version: str) -> list[int]:
        cached = self._partitions.get(version)
        now = time.monotonic()
        if cached is None or now - cached[0] > _PARTITIONS_TTL_S:  # none yet: cached too
            members = self._call(self._redis.smembers, _partitions_key(version))
            cached = self._partitions[version] = (now, sorted(int(m) for m in members))  # type: ignore[attr-defined]
        return cached[1]

    def read(self, version: str, key: str, windows: Sequence[Window]) -> list[WindowValue]:
        layouts = {w.hop_ms: w.layout for w in windows}
        wanted = [(hop, p) for hop in layouts for p in self._partitions_of(version)]
        if not wanted:
            return [combine(w.layout, []) for w in windows]
        names = [layout_.state_key(version, hop, p) + key.encode() for hop, p in wanted]
        reply = self._eval(_READ, names, [np.full(len(names), -1, dtype="<i4").tobytes(), b""])
        counts = np.frombuffer(reply[0], dtype=np.int32)
        widths = [layouts[hop].width for hop, _ in wanted]
        found: dict[int, list[layout_.Row]] = {}
        rows = layout_.rows(reply[1], counts, widths, layout_.olds_of(reply[2]))
        for (hop, _), row in zip(wanted, rows, strict=True):
            if row is not None:
                found.setdefault(hop, []).append(row)
        return [
            combine(w.layout, [_window(w, *row) for row in found.get(w.hop_ms, ())])
            for w in windows
        ]

    def read_many(
        self, version: str, keys: Sequence[str], windows: Sequence[ManyWindows]
    ) -> list[ManyValues]:
        """Many keys' windows of one view version (:meth:`read_views` of one read)."""
        return self.read_views([(version, keys, windows)])[0]

    def read_views(self, reads: Sequence[ManyRead]) -> list[list[ManyValues]]:
        """Several views' reads of many keys in one round trip: every ring of every key,
        view, hop and partition read by one script (a partition's keys share a Cluster
        slot), each (view, hop, partition)'s decoded into a ring of ``len(keys)`` slots
        and merged by the embedded store's compiled pass."""
        groups: list[_Group] = []
        for version, keys, windows in reads:
            slots = np.arange(len(keys), dtype=np.int64)
            entities = [k.encode() for k in keys]
            for hop, layout in {w.hop_ms: w.layout for w in windows}.items():
                for p in self._partitions_of(version):
                    prefix = layout_.state_key(version, hop, p)
                    names = [prefix + e for e in entities]
                    groups.append(_Group(layout, names, slots, len(keys), hop=hop))
        loaded, _ = self._load(groups)
        out, at = [], 0
        for version, keys, windows in reads:
            mine = len(self._partitions_of(version)) * len({w.hop_ms for w in windows})
            rings: dict[int, list[tuple[TileRing, I64]]] = {}
            for g, (ring, _) in zip(groups[at : at + mine], loaded[at : at + mine], strict=True):
                if ring is not None:
                    assert g.found is not None
                    held = np.where(g.found, g.slots, -1)
                    rings.setdefault(g.hop, []).append((ring, held))
            at += mine
            out.append([windows_of(w, rings.get(w.hop_ms, ()), len(keys)) for w in windows])
        return out

    def erase(self, matches: Callable[[str], bool]) -> int:
        """Delete the rings of every entity whose key ``matches`` (erasure), in every
        view version, hop and partition, of either format; return how many keys. A
        ``SCAN`` of the store's keys: slow on a big store, but erasure is rare and runs
        off the request path."""
        doomed = []
        for pattern in ("ll:t:{p*}:*", "ll:f:{p*}:*"):
            for name in self._redis.scan_iter(match=pattern, count=1000):
                parts = name.decode().split(":", 5)  # ll, t, {p<n>}, version, hop, entity key
                if len(parts) == 6 and matches(parts[5]):
                    doomed.append(name)
        for i in range(0, len(doomed), 500):
            self._call(self._redis.delete, *doomed[i : i + 500])
        return len(doomed)

    def close(self) -> None:
        self._redis.close()


_ONE = np.zeros(1, dtype=np.int64)


def _group(r: Runs, entities: list[bytes], capacity: int) -> _Group:
    """What ``apply`` reads for one table: the rings its runs touch; of a tile ring the
    positions they land in, of a list ring every position (a merge re-ranks the list)."""
    t = r.table
    slots = r.codes.astype(np.int64)
    touched = np.unique(slots)
    prefix = layout_.state_key(t.version, t.hop_ms, t.partition)
    names = [prefix + entities[s] for s in touched.tolist()]
    g = _Group(t.layout, names, touched, capacity, size=t.ring)
    if not t.layout.is_list:
        pairs = np.unique(slots * t.ring + r.tiles % t.ring)
        per = np.bincount(np.searchsorted(touched, pairs // t.ring), minlength=len(touched))
        g.wanted = (per, pairs % t.ring)
    return g


def _restage(ring: TileRing, g: _Group, staged: list[_Staged], names: set[bytes]) -> None:
    """Records staged by earlier applies since the last commit, over what was read."""
    if not names:
        return
    for i in [i for i, n in enumerate(g.names) if n in names]:
        for s in staged:
            raw = s.records_of(g.names[i])
            if raw:
                layout_.fill(ring, layout_.decode_one(raw, s.width), g.slots[i : i + 1])


def _stage(r: Runs, g: _Group, ring: TileRing, deadline: I64, now_ms: int) -> _Staged:
    """The records of the positions ``r`` changed (of a ring read from format 2, all
    its tiles), with metadata where a ring has none or its expiry is to be renewed."""
    t, size = r.table, ring.ring
    if g.wanted is not None:
        slots, pos = np.repeat(g.slots, g.wanted[0]), g.wanted[1]
    else:
        rows, pos = np.nonzero(ring.ids[0][g.slots] != NO_TILE)
        slots = g.slots[rows]
    if g.migrated:
        old = np.array(g.migrated, dtype=np.int64)
        rows, held = np.nonzero(ring.ids[0][old] != NO_TILE)
        keys = np.unique(np.r_[slots * size + pos, old[rows] * size + held])
        slots, pos = keys // size, keys % size
    ttl = 2 * t.span_ms
    renew = deadline < now_ms + ttl  # -1: no metadata yet
    expiry = ttl + ttl // 8
    data, sizes = layout_.encode(ring, slots, pos, g.slots[renew], (size, now_ms + expiry))
    assert len(sizes) == len(g.names)
    drop = np.isin(g.slots, old) if g.migrated else np.zeros(len(g.names), dtype=np.bool_)
    index = np.stack([sizes, np.where(renew, expiry, 0), drop.astype(np.int64)], axis=1)
    return _Staged(g.names, index.astype("<i8").tobytes(), data, t.layout.width, sizes)


def _window(w: Window, ids: I64, data: F64, codes: I64) -> WindowValue:
    """One ring row's window (the one-key read)."""
    union = None
    if w.layout.distinct:
        table = CodeTable(len(ids))
        positions, which, values = codes  # slot 0: its keys are the positions
        table.merge(positions, which, values, np.empty(0, dtype=np.int64))
        union = functools.partial(table.union, 0, count=len(w.layout.distinct))
    rows = data.reshape(len(ids), -1)  # a format-2 row: flat
    return window_of(w.layout, ids, rows, union or _no_union, w.head, w.tiles)


def _no_union(picked: list[int]) -> list[set[int]]:
    return []
