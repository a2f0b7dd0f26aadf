"""The Redis online store (``pip install loopline[redis]``), for serving from many processes.

One entity's ring of one (view version, hop, source partition) is one Redis string:
its tile ids, partials and distinct sets (a ``last_n`` list ring likewise, under its
table's negative number in place of the hop). Keys are hash-tagged by partition,
``ll:f:{p<partition>}:...``, so everything a partition's worker writes, states and
checkpoint, sits in one Cluster slot and commits atomically in one ``MULTI``/``EXEC``.
Readers learn which partitions hold a view's state from a set, cached for a second: a
partition's very first state can reach readers in other processes up to 1 s late.
One worker owns a partition, so read-modify-write needs no locks: ``apply`` reads the
rings it touches (one ``MGET``), merges with the same vectorised kernel, and stages them;
``commit`` writes them and the checkpoint in one transaction.

Each ring expires two ring spans (twice the longest window of its view, in wall time)
after its last write, as the embedded store releases idle entities: Redis's memory
follows the active entities. A worker stopped for longer than that loses the state it
would have resumed; its view's window has passed by then anyway, unless the stream is
being replayed far behind the present.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence

import msgspec
import numpy as np
import numpy.typing as npt
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from loopline.exceptions import BackendUnavailableError
from loopline.features.base import ManyRead, ManyValues, ManyWindows, Runs, Window, WindowValue
from loopline.features.distinct import I64, CodeTable, value_code
from loopline.features.kernel import F64, Layout
from loopline.features.ring import TileRing, combine, make_ring, window_of, windows_of
from loopline.servers.credentials import masked

_PARTITIONS_TTL_S = 1.0


FORMAT = 2  # of a stored state: format 1 kept each tile's distinct values themselves
_NO_CODES = np.empty((3, 0), dtype=np.int64)


def _state_key(version: str, hop: int, partition: int, key: str) -> str:
    return f"ll:f:{{p{partition}}}:{version}:{hop}:{key}"


def _checkpoint_key(partition: int) -> str:
    return f"ll:f:{{p{partition}}}:checkpoint"


def _partitions_key(version: str) -> str:
    return f"ll:f:partitions:{version}"


def _encode(ring: TileRing, slot: int) -> bytes:
    """A slot's state, format 2: tile ids, partials, its distinct codes (position,
    aggregation, code) and the format number."""
    ids, data = ring.row(slot)
    codes = np.stack(ring.codes.of_slot(slot)) if ring.layout.distinct else _NO_CODES
    return msgspec.msgpack.encode((ids.tobytes(), data.tobytes(), codes.tobytes(), FORMAT))


def _decode(raw: bytes) -> tuple[I64, F64, I64]:
    """Tile ids, partials and (3, n) distinct codes of a stored state, of either format
    (format 1 kept the distinct values themselves: they are hashed here, and the next
    write stores format 2)."""
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


def _fill(ring: TileRing, rows: list[tuple[int, tuple[I64, F64, I64]]]) -> None:
    """Decoded states into slots of ``ring`` (each row's slot, :func:`_decode`'s state),
    their distinct codes into its table in one merge."""
    found = []
    for slot, (ids, data, codes) in rows:
        ring.put_row(slot, ids, data)
        if codes.shape[1]:
            found.append(codes + np.array([[slot * ring.ring], [0], [0]]))
    if found:
        keys, which, codes = np.concatenate(found, axis=1)
        ring.codes.merge(keys, which, codes, np.empty(0, dtype=np.int64))


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
        self._pending: dict[int, dict[str, tuple[bytes, int]]] = {}  # name: (ring, ttl ms)
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

    def apply(self, keys: npt.NDArray[np.generic], runs: Sequence[Runs]) -> None:
        pending = self._pending.setdefault(runs[0].table.partition, {}) if runs else {}
        for r in runs:
            t = r.table
            ring = make_ring(t.layout, t.ring, capacity=max(1, len(keys)))
            names = [_state_key(t.version, t.hop_ms, t.partition, str(k)) for k in keys.tolist()]
            missing = [i for i, n in enumerate(names) if n not in pending]
            fetched = self._call(self._redis.mget, [names[i] for i in missing]) if missing else []
            stored = [(i, raw) for i, raw in zip(missing, fetched, strict=True) if raw is not None]  # type: ignore[call-overload]
            staged = [(i, pending[name][0]) for i, name in enumerate(names) if name in pending]
            # fetched only where nothing is staged
            _fill(ring, [(i, _decode(raw)) for i, raw in stored + staged])
            ring.merge_runs(r.codes.astype(np.int64), r.tiles, r.parts, r.distinct)
            ttl_ms = 2 * t.span_ms
            for slot in ring.dirty:
                pending[names[slot]] = (_encode(ring, slot), ttl_ms)
            self._pending_versions.setdefault(t.partition, set()).add(t.version)

    def commit(self, partition: int, checkpoint: bytes) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pending = self._pending.get(partition, {})
        for name, (value, ttl_ms) in pending.items():  # the partition's keys share a slot
            pipe.set(name, value, px=ttl_ms)
        pipe.set(_checkpoint_key(partition), checkpoint)
        self._call(pipe.execute)
        for version in self._pending_versions.pop(partition, set()):  # outside the slot
            if partition not in self._partitions_of(version):  # known: no round trip
                self._call(self._redis.sadd, _partitions_key(version), partition)
                self._partitions.pop(version, None)
        self._pending.pop(partition, None)

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
        partitions = self._partitions_of(version)
        pipe = self._redis.pipeline(transaction=False)
        for w in windows:
            for p in partitions:
                pipe.get(_state_key(version, w.hop_ms, p, key))
        raws: list[bytes | None] = self._call(pipe.execute)  # type: ignore[assignment]
        out = []
        for i, w in enumerate(windows):
            found = []
            for raw in raws[i * len(partitions) : (i + 1) * len(partitions)]:
                if raw is not None:
                    found.append(_window(w.layout, raw, w.head, w.tiles))
            out.append(combine(w.layout, found))
        return out

    def read_many(
        self, version: str, keys: Sequence[str], windows: Sequence[ManyWindows]
    ) -> list[ManyValues]:
        """Many keys' windows of one view version (:meth:`read_views` of one read)."""
        return self.read_views([(version, keys, windows)])[0]

    def read_views(self, reads: Sequence[ManyRead]) -> list[list[ManyValues]]:
        """Several views' reads of many keys in one round trip: per view, hop and
        partition one MGET of every key's ring (a partition's keys share a Cluster slot),
        all in one pipeline; each decoded into a ring of ``len(keys)`` slots and merged
        by the embedded store's compiled pass."""
        pipe = self._redis.pipeline(transaction=False)
        wanted: list[list[tuple[int, int]]] = []
        for version, keys, windows in reads:
            partitions = self._partitions_of(version)
            hops = dict.fromkeys(w.hop_ms for w in windows)
            wanted.append([(hop, p) for hop in hops for p in partitions])
            for hop, p in wanted[-1]:
                pipe.mget([_state_key(version, hop, p, k) for k in keys])
        replies: list[list[bytes | None]] = (
            self._call(pipe.execute) if any(wanted) else []  # type: ignore[assignment]
        )
        out, at = [], 0
        for (_, keys, windows), asked in zip(reads, wanted, strict=True):
            layouts = {w.hop_ms: w.layout for w in windows}
            rings = _rings(layouts, asked, replies[at : at + len(asked)], len(keys))
            at += len(asked)
            out.append([windows_of(w, rings.get(w.hop_ms, ()), len(keys)) for w in windows])
        return out

    def erase(self, matches: Callable[[str], bool]) -> int:
        """Delete the rings of every entity whose key ``matches`` (erasure), in every
        view version, hop and partition; return how many keys. A ``SCAN`` of the
        store's keys: slow on a big store, but erasure is rare and runs off the
        request path."""
        doomed = []
        for name in self._redis.scan_iter(match="ll:f:{p*}:*", count=1000):
            parts = name.decode().split(":", 5)  # ll, f, {p<n>}, version, hop, entity key
            if len(parts) == 6 and matches(parts[5]):
                doomed.append(name)
        for i in range(0, len(doomed), 500):
            self._call(self._redis.delete, *doomed[i : i + 500])
        return len(doomed)

    def close(self) -> None:
        self._redis.close()


def _rings(
    layouts: dict[int, Layout],
    asked: list[tuple[int, int]],
    replies: list[list[bytes | None]],
    n: int,
) -> dict[int, list[tuple[TileRing, npt.NDArray[np.int64]]]]:
    """Each (hop, partition) MGET's rings decoded into one ring of ``n`` slots (row ``i``
    in slot ``i``; -1 where that partition holds none of it)."""
    rings: dict[int, list[tuple[TileRing, npt.NDArray[np.int64]]]] = {}
    for (hop, _), raws in zip(asked, replies, strict=True):
        found = [(i, _decode(raw)) for i, raw in enumerate(raws) if raw]
        if not found:
            continue
        ring = make_ring(layouts[hop], len(found[0][1][0]), capacity=n)  # its tile ids
        slots = np.full(n, -1, dtype=np.int64)
        _fill(ring, found)
        for i, _ in found:
            slots[i] = i
        rings.setdefault(hop, []).append((ring, slots))
    return rings


def _window(layout: Layout, raw: bytes, head: int, tiles: int) -> WindowValue:
    ids, data, codes = _decode(raw)
    table = CodeTable(len(ids))
    positions, which, values = codes  # slot 0: its keys are the positions
    table.merge(positions, which, values, np.empty(0, dtype=np.int64))
    union = functools.partial(table.union, 0, count=len(layout.distinct))
    return window_of(layout, ids, data.reshape(len(ids), -1), union, head, tiles)
