"""The embedded online store: tile rings in this process, snapshotted to a SQLite file.

Reads and updates work on in-memory NumPy rings. ``commit`` writes the rings of every
entity changed since the last commit, with the partition's checkpoint, in one SQLite
transaction: after a crash the store reopens at the last commit and the engine replays
the event log from the offsets in that checkpoint, so nothing is lost or counted twice.
"""

from __future__ import annotations

import os
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from loopline.features.base import Sets, Table, Window, WindowValue
from loopline.features.kernel import F64, Layout
from loopline.features.ring import TileRing, combine

_SCHEMA = """
CREATE TABLE IF NOT EXISTS slots (
    version TEXT NOT NULL, hop INTEGER NOT NULL, partition INTEGER NOT NULL, key TEXT NOT NULL,
    tiles BLOB NOT NULL, data BLOB NOT NULL, sets BLOB,
    PRIMARY KEY (version, hop, partition, key)
);
CREATE TABLE IF NOT EXISTS checkpoints (partition INTEGER PRIMARY KEY, data BLOB NOT NULL);
"""

RingKey = tuple[str, int, int]


class EmbeddedStore:
    """An online store in this process, persisted to ``path`` at each commit.

    Args:
        path: The SQLite file; created when missing, reloaded when present.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._rings: dict[RingKey, TileRing] = {}
        self._by_hop: dict[tuple[str, int], list[TileRing]] = {}
        self._loaded: set[tuple[str, int]] = set()

    def _ring(self, version: str, hop: int, partition: int, layout: Layout, ring: int) -> TileRing:
        key = (version, hop, partition)
        found = self._rings.get(key)
        if found is None:
            found = self._rings[key] = TileRing(layout, ring)
            self._by_hop.setdefault((version, hop), []).append(found)
        return found

    def _load(self, version: str, hop: int, layout: Layout) -> None:
        """Rebuild the rings of (version, hop) from the file, once per process."""
        if (version, hop) in self._loaded:
            return
        self._loaded.add((version, hop))
        rows = self._conn.execute(
            "SELECT partition, key, tiles, data, sets FROM slots WHERE version = ? AND hop = ?",
            (version, hop),
        ).fetchall()
        for partition, key, tiles, data, sets in rows:
            ids = np.frombuffer(tiles, dtype=np.int64)
            ring = self._ring(version, hop, partition, layout, len(ids))
            (slot,) = ring.slots_for(np.array([key]))
            ring.tile_ids[slot] = ids
            ring.data[slot] = np.frombuffer(data, dtype=np.float64).reshape(len(ids), -1)
            for pos, value in (_sets_decoder.decode(sets) if sets else {}).items():
                ring.sets[(int(slot), pos)] = [set(s) for s in value]
            ring.dirty.discard(int(slot))

    def apply(
        self,
        table: Table,
        keys: npt.NDArray[np.generic],
        tiles: npt.NDArray[np.int64],
        parts: F64,
        sets: Sets,
    ) -> None:
        self._load(table.version, table.hop_ms, table.layout)
        ring = self._ring(table.version, table.hop_ms, table.partition, table.layout, table.ring)
        ring.merge_runs(ring.slots_for(keys), tiles, parts, sets)

    def read(self, version: str, key: str, windows: Sequence[Window]) -> list[WindowValue]:
        out = []
        for w in windows:
            self._load(version, w.hop_ms, w.layout)
            found = []
            for ring in self._by_hop.get((version, w.hop_ms), ()):
                slot = ring.slots.get(key)
                if slot is not None:
                    found.append(ring.window(slot, w.head, w.tiles))
            out.append(combine(w.layout, found))
        return out

    def commit(self, partition: int, checkpoint: bytes) -> None:
        rows = []
        for (version, hop, p), ring in self._rings.items():
            if p != partition:
                continue
            sets: dict[int, dict[int, list[list[object]]]] = defaultdict(dict)
            for (slot, pos), value in ring.sets.items():
                if slot in ring.dirty:
                    sets[slot][pos] = [sorted(s, key=repr) for s in value]
            for slot in ring.dirty:
                blob = _sets_encoder.encode(sets[slot]) if slot in sets else None
                rows.append(
                    (
                        version,
                        hop,
                        p,
                        ring.keys[slot],
                        ring.tile_ids[slot].tobytes(),
                        ring.data[slot].tobytes(),
                        blob,
                    )
                )
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO slots VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            conn.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?)", (partition, checkpoint)
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        for (_, _, p), ring in self._rings.items():
            if p == partition:
                ring.dirty.clear()

    def checkpoint(self, partition: int) -> bytes | None:
        row = self._conn.execute(
            "SELECT data FROM checkpoints WHERE partition = ?", (partition,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def close(self) -> None:
        self._conn.close()


_sets_encoder = msgspec.msgpack.Encoder()
_sets_decoder = msgspec.msgpack.Decoder(dict[int, list[list[object]]])
