"""The embedded online store: tile rings in this process, snapshotted to a SQLite file.

Reads and updates work on in-memory NumPy rings (tile rings, and the list rings of
``last_n`` features, stored alike). ``commit`` records a partition's
checkpoint with the state in memory; every ``snapshot_interval_s`` (and on ``close``)
the whole state, rings and all partitions' checkpoints, is written to the file in one
SQLite transaction as zstd-compressed array blobs. Each commit of a small batch copies
the tiles it changed into a copy of the state (cheap while they are still in the CPU's
cache), so a snapshot finds that copy up to date but for the last batch; compressing and
writing it run in a background thread at the lowest priority, so a serving event loop
does not stall on them (its process may be pinned to one core). After a crash
the store reopens at the last snapshot and the engine replays the event log from that
snapshot's offsets: the state and the offsets always belong together, so nothing is lost
or counted twice. The interval trades replay time after a crash against write volume (0
snapshots at every commit, and waits for the write).

Before each snapshot, entities idle for two ring spans (twice the longest window of
their view) give their slots back, and new entities reuse them: memory follows the
entities active within that horizon, not every card or device ever seen.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.features.base import ManyRead, ManyValues, ManyWindows, Runs, Window, WindowValue
from loopline.features.distinct import CodeTable
from loopline.features.kernel import Layout
from loopline.features.ring import NO_TILE, SlotMap, TileRing, combine, make_ring, windows_of
from loopline.features.ring_copy import RingCopy, pending
from loopline.features.snapshot_file import KEYS_CODEC, SCHEMA, migrate, pack, unpack

# commits copy their changes into the snapshot's copy while at most this many are waiting
# (serving: batches of tens of events); a bulk load's batches wait for the snapshot, which
# copies each changed tile once instead of at every batch that changes it (measured on the
# features benchmark's batches of 20,000: syncing each cost 20 % of the apply rate)
SYNC_CELLS = 20_000
# the snapshot writer's niceness: compressing and writing yield the core to the
# serving thread, which it shares in a process pinned to one core
WRITER_NICE = 19


class EmbeddedStore:
    """An online store in this process, snapshotted to ``path``.

    Args:
        path: The SQLite file; created when missing, reloaded when present.
        snapshot_interval_s: Write a snapshot at the first commit this long after the
            last one (0: at every commit).
    """

    remote = False

    def __init__(self, path: str | os.PathLike[str], *, snapshot_interval_s: float = 5.0) -> None:
        self.path = Path(path)
        self.snapshot_interval_s = snapshot_interval_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        migrate(self._conn)
        self._writer: threading.Thread | None = None  # the snapshot being written
        self._writer_error: BaseException | None = None
        # per ring: the copy a snapshot writes, kept up to date tile by tile
        self._copies: dict[tuple[str, int, int], RingCopy] = {}
        self._slot_maps = {
            (v, p): SlotMap(KEYS_CODEC[1].decode(keys))
            for v, p, keys in self._conn.execute("SELECT version, partition, keys FROM slot_maps")
        }
        self._checkpoints: dict[int, bytes] = dict(
            self._conn.execute("SELECT partition, data FROM checkpoints").fetchall()
        )
        self._rings: dict[tuple[str, int, int], TileRing] = {}
        self._by_hop: dict[tuple[str, int], list[tuple[int, TileRing]]] = {}
        self._loaded: set[tuple[str, int]] = set()
        self._stored: set[tuple[str, int]] = set(
            self._conn.execute("SELECT DISTINCT version, hop FROM rings").fetchall()
        )
        self._last_snapshot = time.monotonic()

    def _slot_map(self, version: str, partition: int) -> SlotMap:
        return self._slot_maps.setdefault((version, partition), SlotMap())

    def _ring(self, version: str, hop: int, partition: int, layout: Layout, ring: int) -> TileRing:
        self._load(version, hop, layout)
        found = self._rings.get((version, hop, partition))
        if found is None:
            found = self._rings[(version, hop, partition)] = make_ring(layout, ring)
            self._by_hop.setdefault((version, hop), []).append((partition, found))
        return found

    def _load(self, version: str, hop: int, layout: Layout) -> None:
        """Rebuild the rings of (version, hop) from the last snapshot, once per process."""
        if (version, hop) in self._loaded:
            return
        self._join()  # the connection is the snapshot writer's until it is done
        self._loaded.add((version, hop))
        rows = self._conn.execute(
            "SELECT partition, ring, tiles, data, sets FROM rings WHERE version = ? AND hop = ?",
            (version, hop),
        )
        for partition, size, tiles, data, sets in rows.fetchall():
            ids = unpack(tiles, np.int64).view(np.int64).reshape(-1, size)
            values = unpack(data, np.float64).view(np.float64).reshape(len(ids), size, -1)
            ring = self._ring(version, hop, partition, layout, size)
            ring.put_rows(ids, values)
            stacked = unpack(sets, np.int64).view(np.int64)
            ring.codes = CodeTable.from_arrays(size, stacked, ring.block)

    def apply(self, keys: npt.NDArray[np.generic], runs: Sequence[Runs]) -> None:
        if not runs:
            return
        first = runs[0].table
        slot_map = self._slot_map(first.version, first.partition)
        slots = slot_map.slots_for(keys)
        for r in runs:
            t = r.table
            ring = self._ring(t.version, t.hop_ms, t.partition, t.layout, t.ring)
            ring.ensure(len(slot_map.keys))
            ring.merge_runs(slots[r.codes], r.tiles, r.parts, r.distinct)

    def read(self, version: str, key: str, windows: Sequence[Window]) -> list[WindowValue]:
        slots = dict(self.locate(version, key))  # one lookup per partition, not per hop
        out = []
        for w in windows:
            self._load(version, w.hop_ms, w.layout)
            found = [
                ring.window(slots[p], w.head, w.tiles)
                for p, ring in self._by_hop.get((version, w.hop_ms), ())
                if p in slots
            ]
            out.append(combine(w.layout, found))
        return out

    def locate(self, version: str, key: str) -> list[tuple[int, int]]:
        """(partition, slot) of each partition that holds ``key`` in ``version``."""
        found = []
        for (v, partition), slot_map in self._slot_maps.items():
            slot = slot_map.slots.get(key) if v == version else None
            if slot is not None:
                found.append((partition, slot))
        return found

    def ring(self, version: str, layout: Layout, partition: int) -> TileRing | None:
        """The tile ring of (``version``, ``layout``'s hop, ``partition``), if any."""
        self._load(version, layout.hop_ms, layout)
        return self._rings.get((version, layout.hop_ms, partition))

    def read_many(
        self, version: str, keys: Sequence[str], windows: Sequence[ManyWindows]
    ) -> list[ManyValues]:
        """Many keys' windows at once (one compiled call per ring): per window, the merged
        partials ``(len(keys), width)`` and, with distinct counts, each row's sets."""
        n = len(keys)
        slots = {
            p: np.fromiter((m.slots.get(k, -1) for k in keys), dtype=np.int64, count=n)
            for (v, p), m in self._slot_maps.items()
            if v == version
        }
        out = []
        for w in windows:
            self._load(version, w.hop_ms, w.layout)
            rings = self._by_hop.get((version, w.hop_ms), ())
            out.append(windows_of(w, ((r, slots[p]) for p, r in rings if p in slots), n))
        return out

    def read_views(self, reads: Sequence[ManyRead]) -> list[list[ManyValues]]:
        """:meth:`read_many` of each ``(version, keys, windows)``."""
        return [self.read_many(*read) for read in reads]

    def commit(self, partition: int, checkpoint: bytes) -> None:
        self._checkpoints[partition] = checkpoint
        if self._writer is not None and self._writer.is_alive():
            return  # the copies are the writer's until it is done
        if time.monotonic() - self._last_snapshot >= self.snapshot_interval_s:
            self.snapshot(wait=self.snapshot_interval_s == 0)
        elif sum(pending(ring) for ring in self._rings.values()) <= SYNC_CELLS:
            self._sync()

    def snapshot(self, *, wait: bool = True) -> None:
        """Write the whole state and every checkpoint in one transaction: copied now, and
        written before this returns (``wait``) or by a background thread."""
        self._join()
        self.evict_idle()
        state = self._capture()
        self._last_snapshot = time.monotonic()
        if wait:
            self._write(*state)
            return
        self._writer = threading.Thread(
            target=self._write_logged, args=state, name="feature-snapshot", daemon=True
        )
        self._writer.start()

    def evict_idle(self) -> int:
        """Release the slots of entities idle past every window in all the rings they
        share (:meth:`TileRing.idle`); new keys reuse them, so memory follows the active
        entities. Versions with rings still on disk only are left alone. Returns how many
        were released."""
        released = 0
        for (version, partition), slot_map in self._slot_maps.items():
            if any(v == version and (v, h) not in self._loaded for v, h in self._stored):
                continue
            rings = [r for (v, _, p), r in self._rings.items() if (v, p) == (version, partition)]
            n = len(slot_map.keys)
            if not rings or n == 0:
                continue
            idle = np.ones(n, dtype=np.bool_)
            for ring in rings:
                ring.ensure(n)
                idle &= ring.idle(n)
            idle[slot_map.free] = False  # released already
            slots = np.flatnonzero(idle)
            if len(slots):
                slot_map.release(slots)
                for ring in rings:
                    ring.clear(slots)
                released += len(slots)
        return released

    def erase(self, matches: Callable[[str], bool]) -> int:
        """Forget every entity whose key ``matches`` (erasure, GDPR art. 17): its slots
        are emptied in every ring, in memory and in the snapshot, and its key leaves the
        slot maps. Then the file is rewritten (``VACUUM``) and its WAL truncated, so no
        earlier snapshot's copy of the key is left in free pages. Returns how many
        (view version, partition, key) entries were erased.

        Distinct counts of *other* entities keep only 64-bit hashes of their values
        (:mod:`loopline.features.distinct`), never the values: a count that includes a
        subject's identifier under another entity keeps its hash until the window passes.
        """
        self._join()
        erased = 0
        for (version, partition), slot_map in self._slot_maps.items():
            found = [s for k, s in slot_map.slots.items() if matches(k)]
            if not found:
                continue
            slots = np.array(found, dtype=np.int64)
            for (v, _, p), ring in self._rings.items():
                if (v, p) == (version, partition):
                    ring.ensure(len(slot_map.keys))
                    ring.clear(slots)
            self._clear_stored(version, partition, slots)
            slot_map.release(slots)
            erased += len(found)
        if erased:
            self.snapshot(wait=True)
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return erased

    def _clear_stored(self, version: str, partition: int, slots: npt.NDArray[np.int64]) -> None:
        """Empty ``slots`` in the stored rings of (version, partition) not loaded in this
        process (their layout is unknown here, but a ring's arrays need none)."""
        rows = self._conn.execute(
            "SELECT hop, ring, tiles, data, sets FROM rings WHERE version = ? AND partition = ?",
            (version, partition),
        ).fetchall()
        for hop, size, tiles, data, sets in rows:
            if (version, hop) in self._loaded:
                continue
            ids = unpack(tiles, np.int64).reshape(-1, size).copy()
            values = unpack(data, np.float64).reshape(len(ids), size, -1).copy()
            inside = slots[slots < len(ids)]
            ids[inside], values[inside] = NO_TILE, 0.0
            codes = CodeTable.from_arrays(size, unpack(sets, np.int64).view(np.int64))
            codes.drop_slots(inside)
            self._conn.execute(
                "UPDATE rings SET tiles = ?, data = ?, sets = ? "
                "WHERE version = ? AND hop = ? AND partition = ?",
                (pack([ids]), pack([values]), pack([codes.arrays()]), version, hop, partition),
            )

    def _capture(self) -> tuple[list[Any], list[Any], list[Any]]:
        """A consistent copy of the state: the rings' copies brought up to date
        (:meth:`_sync`), the sets and keys encoded."""
        self._sync()
        maps = [(v, p, KEYS_CODEC[0].encode(m.keys)) for (v, p), m in self._slot_maps.items()]
        rings = []
        for name, ring in self._rings.items():
            version, hop, partition = name
            n = len(self._slot_maps[(version, partition)].keys)
            ids, data = self._copies[name].arrays(ring, n)
            codes = ring.codes.columns()  # arrays replaced, never written: no copy needed
            rings.append((version, hop, partition, ring.ring, ids, data, codes))
        return maps, rings, list(self._checkpoints.items())

    def _sync(self) -> None:
        """Bring each ring's snapshot copy up to date (:mod:`loopline.features.ring_copy`)."""
        for name, ring in self._rings.items():
            version, _, partition = name
            n = len(self._slot_maps[(version, partition)].keys)
            self._copies.setdefault(name, RingCopy()).sync(ring, n)

    def _write(self, maps: list[Any], rings: list[Any], checkpoints: list[Any]) -> None:
        packed = [(*r[:4], pack(r[4]), pack(r[5]), pack(r[6])) for r in rings]
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO slot_maps VALUES (?, ?, ?)", maps)
            conn.executemany("INSERT OR REPLACE INTO rings VALUES (?, ?, ?, ?, ?, ?, ?)", packed)
            conn.executemany("INSERT OR REPLACE INTO checkpoints VALUES (?, ?)", checkpoints)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _write_logged(self, *state: Any) -> None:
        if sys.platform == "linux":  # nice is per thread there: the request path goes first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICE)
        try:
            self._write(*state)
        except BaseException as exc:  # raised by the next snapshot or close
            self._writer_error = exc

    def _join(self) -> None:
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        error, self._writer_error = self._writer_error, None
        if error is not None:
            raise error

    def checkpoint(self, partition: int) -> bytes | None:
        return self._checkpoints.get(partition)

    def close(self) -> None:
        self.snapshot()
        self._conn.close()
