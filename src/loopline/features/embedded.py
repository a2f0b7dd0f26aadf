"""The embedded online store: in-process dictionaries, persisted to a SQLite file.

Reads come from memory. Each commit writes the changed states and the checkpoint in
one SQLite transaction, so a process killed at any point restarts from a consistent
(state, offsets) pair.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from loopline.features.base import StateKey

_SCHEMA = """
CREATE TABLE IF NOT EXISTS states (
    view TEXT NOT NULL, partition INTEGER NOT NULL, key TEXT NOT NULL, state BLOB NOT NULL,
    PRIMARY KEY (view, partition, key)
);
CREATE TABLE IF NOT EXISTS checkpoint (id INTEGER PRIMARY KEY CHECK (id = 0), data BLOB NOT NULL);
"""


class EmbeddedStore:
    """An online store in this process, persisted to ``path``.

    Args:
        path: The SQLite file; its states are loaded into memory on open.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        rows = self._conn.execute("SELECT view, partition, key, state FROM states")
        self._states: dict[StateKey, bytes] = {(v, p, k): s for v, p, k, s in rows}
        self._partitions: dict[str, set[int]] = {}
        for view, partition, _ in self._states:
            self._partitions.setdefault(view, set()).add(partition)

    def get_many(self, keys: Sequence[StateKey]) -> list[bytes | None]:
        states = self._states
        return [states.get(k) for k in keys]

    def partitions(self, view_version: str) -> list[int]:
        return sorted(self._partitions.get(view_version, ()))

    def commit(self, states: Mapping[StateKey, bytes], checkpoint: bytes) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO states VALUES (?, ?, ?, ?)",
                [(v, p, k, s) for (v, p, k), s in states.items()],
            )
            conn.execute("INSERT OR REPLACE INTO checkpoint VALUES (0, ?)", (checkpoint,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._states.update(states)
        for view, partition, _ in states:
            self._partitions.setdefault(view, set()).add(partition)

    def checkpoint(self) -> bytes | None:
        row = self._conn.execute("SELECT data FROM checkpoint WHERE id = 0").fetchone()
        return None if row is None else bytes(row[0])

    def close(self) -> None:
        self._conn.close()
