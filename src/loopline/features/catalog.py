"""The feature catalog: every version of every view, and which version each name serves.

A changed definition is a new version (its fingerprint, :attr:`FeatureView.version`).
Registering one keeps the old: both are maintained by the online engine, so promoting
the new one and rolling back are both a re-pointing, with no backfill on the way back.
Retiring a version stops its maintenance. The catalog is a small SQLite file.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from loopline.exceptions import ConfigError
from loopline.features.definitions import FeatureView

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL, version TEXT NOT NULL, definition BLOB NOT NULL,
    registered_ms INTEGER NOT NULL, retired_ms INTEGER, PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS serving (name TEXT PRIMARY KEY, version TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One registered version of a view."""

    name: str
    version: str
    registered_ms: int
    retired_ms: int | None
    serving: bool


class Catalog:
    """Feature-view versions in ``path``.

    Example:
        >>> import tempfile
        >>> from loopline.apps.fraud import fraud_views
        >>> catalog = Catalog(tempfile.mkdtemp() + "/catalog.db")
        >>> card = fraud_views()[0]
        >>> catalog.register(card) == card.version
        True
        >>> catalog.serving("card") == card
        True
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.executescript(_SCHEMA)

    def register(self, view: FeatureView, *, serve: bool | None = None) -> str:
        """Store ``view`` (a no-op if this version exists); serve it if it is the name's
        first version or ``serve`` is true. Returns its version."""
        self._conn.execute(
            "INSERT OR IGNORE INTO versions VALUES (?, ?, ?, ?, NULL)",
            (view.name, view.version, msgspec.json.encode(view), int(time.time() * 1000)),
        )
        self._conn.execute(  # registering a retired version brings it back
            "UPDATE versions SET retired_ms = NULL WHERE name = ? AND version = ?",
            (view.name, view.version),
        )
        first = (
            self._conn.execute("SELECT 1 FROM serving WHERE name = ?", (view.name,)).fetchone()
            is None
        )
        if serve or (serve is None and first):
            self.point(view.name, view.version)
        return view.version

    def point(self, name: str, version: str) -> None:
        """Serve ``name`` from ``version``: promotion and rollback."""
        self._info(name, version, live=True)
        self._conn.execute("INSERT OR REPLACE INTO serving VALUES (?, ?)", (name, version))

    def retire(self, name: str, version: str) -> None:
        """Stop maintaining ``version``; the version a name serves cannot be retired."""
        if self._serving_version(name) == version:
            raise ConfigError(
                f"Version {version} serves view {name!r}: point {name!r} elsewhere first."
            )
        self._info(name, version, live=True)
        self._conn.execute(
            "UPDATE versions SET retired_ms = ? WHERE name = ? AND version = ?",
            (int(time.time() * 1000), name, version),
        )

    def serving(self, name: str) -> FeatureView:
        """The version ``name`` serves."""
        version = self._serving_version(name)
        if version is None:
            raise ConfigError(f"No view {name!r} is registered: catalog.register(view) first.")
        return self.get(name, version)

    def get(self, name: str, version: str) -> FeatureView:
        row = self._conn.execute(
            "SELECT definition FROM versions WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
        if row is None:
            raise ConfigError(
                f"View {name!r} has no version {version!r}; see catalog.versions({name!r})."
            )
        return msgspec.json.decode(row[0], type=FeatureView)

    def maintained(self) -> list[FeatureView]:
        """Every version not retired: what the online engine must keep up to date."""
        rows = self._conn.execute(
            "SELECT definition FROM versions WHERE retired_ms IS NULL ORDER BY name, registered_ms"
        )
        return [msgspec.json.decode(d, type=FeatureView) for (d,) in rows]

    def versions(self, name: str) -> list[VersionInfo]:
        serving = self._serving_version(name)
        rows = self._conn.execute(
            "SELECT version, registered_ms, retired_ms FROM versions WHERE name = ? "
            "ORDER BY registered_ms",
            (name,),
        )
        return [VersionInfo(name, v, r, t, v == serving) for v, r, t in rows]

    def pointers(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT name, version FROM serving").fetchall())

    def _serving_version(self, name: str) -> str | None:
        row = self._conn.execute("SELECT version FROM serving WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def _info(self, name: str, version: str, *, live: bool) -> None:
        row = self._conn.execute(
            "SELECT retired_ms FROM versions WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
        if row is None:
            raise ConfigError(f"View {name!r} has no version {version!r}; register it first.")
        if live and row[0] is not None:
            raise ConfigError(f"Version {version} of view {name!r} is retired; register it again.")

    def close(self) -> None:
        self._conn.close()
