"""The embedded store's file: its SQLite schema, the format of its blobs, and the
migration of a file of an earlier format.

Rings are stored as zstd-compressed arrays (:func:`pack`), one row per (view version,
hop, partition); slot maps as msgpack lists of keys; checkpoints as the engine's bytes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from loopline.features.distinct import CodeTable, value_code

SCHEMA = """
CREATE TABLE IF NOT EXISTS slot_maps (
    version TEXT NOT NULL, partition INTEGER NOT NULL, keys BLOB NOT NULL,
    PRIMARY KEY (version, partition)
);
CREATE TABLE IF NOT EXISTS rings (
    version TEXT NOT NULL, hop INTEGER NOT NULL, partition INTEGER NOT NULL,
    ring INTEGER NOT NULL, tiles BLOB NOT NULL, data BLOB NOT NULL, sets BLOB NOT NULL,
    PRIMARY KEY (version, hop, partition)
);
CREATE TABLE IF NOT EXISTS checkpoints (partition INTEGER PRIMARY KEY, data BLOB NOT NULL);
"""

KEYS_CODEC = (msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(list[str | None]))
# format 1 kept each tile's distinct values as msgpack sets; format 2 (this one) keeps the
# ring's code table (loopline.features.distinct) as packed arrays, like the tiles
FORMAT = 2
_V1_SETS = msgspec.msgpack.Decoder(list[tuple[int, int, list[list[object]]]])


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a file of an earlier format to :data:`FORMAT` (format 1: distinct values as
    msgpack sets per tile, now hashed into code tables), in one transaction."""
    (found,) = conn.execute("PRAGMA user_version").fetchone()
    if found >= FORMAT:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute("SELECT version, hop, partition, ring, sets FROM rings").fetchall()
        for version, hop, partition, size, sets in rows:
            table = CodeTable(size)
            entries = [
                (s * size + p, d, value_code(v))
                for s, p, values in _V1_SETS.decode(sets)
                for d, held in enumerate(values)
                for v in held
            ]
            if entries:
                keys, which, codes = np.array(entries, dtype=np.int64).T
                table.merge(keys, which, codes, np.empty(0, dtype=np.int64))
            conn.execute(
                "UPDATE rings SET sets = ? WHERE version = ? AND hop = ? AND partition = ?",
                (pack([table.arrays()]), version, hop, partition),
            )
        conn.execute(f"PRAGMA user_version = {FORMAT}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def pack(arrays: Sequence[npt.NDArray[np.generic]]) -> bytes:
    """The arrays one after the other, as zstd: dense rings are mostly empty tiles (~60x
    smaller), compressed at ~3 GB/s straight from each array's memory (no copy, and the
    GIL released meanwhile). One frame per array; the frames decompress as one."""
    raws = [pa.py_buffer(np.ascontiguousarray(a)) for a in arrays]
    packed = b"".join(pa.compress(raw, codec="zstd", asbytes=True) for raw in raws)
    size: int = sum(raw.size for raw in raws)
    return size.to_bytes(8, "little") + packed


def unpack(blob: bytes, dtype: type[np.generic]) -> npt.NDArray[np.generic]:
    size = int.from_bytes(blob[:8], "little")
    raw = pa.decompress(blob[8:], decompressed_size=size, codec="zstd", asbytes=True)
    return np.frombuffer(raw, dtype=dtype)
