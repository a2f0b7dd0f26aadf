"""Per-subject data keys for crypto-shredding (:mod:`loopline.privacy.shredding`): a
random 32-byte key and a random 16-byte id per subject, in a SQLite file (embedded
profile) or PostgreSQL (scale profile), behind a bounded cache whose entries expire
(``cache_ttl_s``), so a key erased here stops decrypting in every process within it.
"""

from __future__ import annotations

import contextlib
import hmac
import math
import os
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from loopline.exceptions import BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KEY_ID_BYTES", "KeyStore"]

KEY_ID_BYTES = 16
_SCHEMA_LOCK = 0x6C6B6579  # advisory lock ("lkey") held while creating the table
_MISSING = object()


class _DataKey:
    """One subject's key, ready to use: its id, the cipher and the key-hashing key."""

    __slots__ = ("aead", "key_id", "mac_key")

    def __init__(self, key_id: bytes, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.key_id = key_id
        self.aead: AESGCM = AESGCM(hmac.digest(key, b"loopline shredding value", "sha256"))
        self.mac_key = hmac.digest(key, b"loopline shredding key", "sha256")


class _Cache:
    """An LRU of at most ``size`` entries, each kept at most ``ttl_s``."""

    def __init__(self, size: int, ttl_s: float, clock: Callable[[], float]) -> None:
        self._items: OrderedDict[object, tuple[float, Any]] = OrderedDict()
        self._size, self._ttl_s, self._clock = size, ttl_s, clock

    def get(self, key: object) -> Any:
        item = self._items.get(key)
        if item is None:
            return _MISSING
        if item[0] < self._clock():
            del self._items[key]
            return _MISSING
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: object, value: Any) -> None:
        self._items[key] = (self._clock() + self._ttl_s, value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def pop(self, key: object) -> None:
        self._items.pop(key, None)


class _Backend(Protocol):
    def by_subject(self, subject_ids: list[str]) -> dict[str, tuple[bytes, bytes]]: ...
    def by_key_id(self, key_ids: list[bytes]) -> dict[bytes, bytes]: ...
    def insert(self, rows: list[tuple[str, bytes, bytes]]) -> None: ...
    def delete(self, subject_id: str) -> bytes | None: ...
    def close(self) -> None: ...


_TABLE = (
    "CREATE TABLE IF NOT EXISTS subject_keys (subject_id TEXT PRIMARY KEY, "
    "key_id {blob} NOT NULL UNIQUE, key {blob} NOT NULL, created_ms BIGINT NOT NULL)"
)


class _SqliteKeys:
    """Keys in a SQLite file (mode 0600); a deleted key's bytes are zeroed in the file
    (``secure_delete``) and the WAL truncated after, so no page image keeps it."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # made private before SQLite opens it
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._conn = sqlite3.connect(
            path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.execute(_TABLE.format(blob="BLOB"))

    def _select(self, column: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for i in range(0, len(values), 500):
            chunk = values[i : i + 500]
            rows += self._conn.execute(
                f"SELECT subject_id, key_id, key FROM subject_keys WHERE {column} IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
        return rows

    def by_subject(self, subject_ids: list[str]) -> dict[str, tuple[bytes, bytes]]:
        return {s: (k_id, k) for s, k_id, k in self._select("subject_id", subject_ids)}

    def by_key_id(self, key_ids: list[bytes]) -> dict[bytes, bytes]:
        return {k_id: k for _, k_id, k in self._select("key_id", key_ids)}

    def insert(self, rows: list[tuple[str, bytes, bytes]]) -> None:
        now = time.time_ns() // 1_000_000
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "INSERT OR IGNORE INTO subject_keys VALUES (?, ?, ?, ?)",
                [(*row, now) for row in rows],
            )

    def delete(self, subject_id: str) -> bytes | None:
        row = self._conn.execute(
            "DELETE FROM subject_keys WHERE subject_id = ? RETURNING key_id", (subject_id,)
        ).fetchone()
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return None if row is None else bytes(row[0])

    def close(self) -> None:
        self._conn.close()


class _PostgresKeys:
    """Keys in PostgreSQL's ``subject_keys`` table; a deletion is followed by ``VACUUM``
    (PostgreSQL does not zero freed space: encrypt its volume, see decision 0008)."""

    def __init__(self, url: str, timeout_s: float) -> None:
        import psycopg

        from loopline.servers.credentials import masked

        try:
            self._conn = psycopg.connect(
                url, autocommit=True, connect_timeout=max(2, math.ceil(timeout_s))
            )
        except psycopg.OperationalError as exc:
            raise BackendUnavailableError(
                f"Cannot connect to the PostgreSQL key store at {masked(url)} within "
                f"{timeout_s:g}s: {str(exc).strip()}. Check that the server runs and that "
                "the URL (host, port, user, password, database) is right."
            ) from None
        with self._conn.transaction():  # CREATE ... IF NOT EXISTS races with itself
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            self._conn.execute(_TABLE.format(blob="BYTEA"))

    def _select(self, column: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        query = f"SELECT subject_id, key_id, key FROM subject_keys WHERE {column} = ANY(%s)"
        return self._conn.execute(query, (list(values),)).fetchall()

    def by_subject(self, subject_ids: list[str]) -> dict[str, tuple[bytes, bytes]]:
        return {
            s: (bytes(k_id), bytes(k)) for s, k_id, k in self._select("subject_id", subject_ids)
        }

    def by_key_id(self, key_ids: list[bytes]) -> dict[bytes, bytes]:
        return {bytes(k_id): bytes(k) for _, k_id, k in self._select("key_id", key_ids)}

    def insert(self, rows: list[tuple[str, bytes, bytes]]) -> None:
        now = time.time_ns() // 1_000_000
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO subject_keys VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(*row, now) for row in rows],
            )

    def delete(self, subject_id: str) -> bytes | None:
        row = self._conn.execute(
            "DELETE FROM subject_keys WHERE subject_id = %s RETURNING key_id", (subject_id,)
        ).fetchone()
        self._conn.execute("VACUUM subject_keys")
        return None if row is None else bytes(row[0])

    def close(self) -> None:
        self._conn.close()


class KeyStore:
    """Per-subject data keys (32 random bytes, each with a random 16-byte id) for
    crypto-shredding, in a SQLite file (embedded profile) or PostgreSQL (scale profile).

    Args:
        url: ``file:///path/keys.db`` (or a plain path; the file is created mode 0600)
            or ``postgresql://user:password@host:port/db`` (table ``subject_keys``).
        cache_size: The most keys kept in this process (LRU).
        cache_ttl_s: The longest a key is used from the cache: after an erasure in
            another process, this one stops decrypting within this time.
        timeout_s: Connection deadline (PostgreSQL), lock wait (SQLite).
        clock: Seconds, monotonic (the cache's deadlines).
    """

    def __init__(
        self,
        url: str,
        *,
        cache_size: int = 100_000,
        cache_ttl_s: float = 60.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cache_size < 1 or not cache_ttl_s >= 0 or not timeout_s > 0:
            raise ConfigError(
                "KeyStore needs cache_size >= 1, cache_ttl_s >= 0 and timeout_s > 0. Got "
                f"{cache_size!r}, {cache_ttl_s!r}, {timeout_s!r}."
            )
        self.url = url
        self.cache_size = cache_size
        self.cache_ttl_s = cache_ttl_s
        self.timeout_s = timeout_s
        self.clock = clock
        scheme = urlsplit(url).scheme
        self._backend: _Backend
        if scheme in ("postgresql", "postgres"):
            self._backend = _PostgresKeys(url, timeout_s)
        elif scheme in ("", "file"):
            self._backend = _SqliteKeys(Path(url.removeprefix("file://")), timeout_s)
        else:
            raise ConfigError(
                f"KeyStore URL has unknown scheme {scheme!r}: use file:///path/keys.db or "
                "postgresql://user:password@host:port/db."
            )
        self._cache = _Cache(cache_size, cache_ttl_s, clock)
        self._lock = threading.Lock()

    def _keys_for(self, subject_ids: Collection[str]) -> dict[str, _DataKey]:
        """Each subject's key, made (and stored) for subjects that have none."""
        out: dict[str, _DataKey] = {}
        with self._lock:
            for s in subject_ids:
                found = self._cache.get(("s", s))
                if found is not _MISSING:
                    out[s] = found
            missing = [s for s in subject_ids if s not in out]
            if not missing:
                return out
            stored = self._backend.by_subject(missing)
            new = [(s, secrets.token_bytes(KEY_ID_BYTES), secrets.token_bytes(32)) for s in missing]
            new = [row for row in new if row[0] not in stored]
            if new:
                self._backend.insert(new)  # a concurrent writer's key wins: read back
                stored |= self._backend.by_subject([s for s, _, _ in new])
            for s, (key_id, key) in stored.items():
                out[s] = self._remember(s, _DataKey(key_id, key))
        return out

    def _keys_by_id(self, key_ids: Collection[bytes]) -> dict[bytes, _DataKey | None]:
        """The key of each id; ``None`` for a shredded one."""
        out: dict[bytes, _DataKey | None] = {}
        with self._lock:
            for k_id in key_ids:
                found = self._cache.get(("k", k_id))
                if found is not _MISSING:
                    out[k_id] = found
            missing = [k_id for k_id in key_ids if k_id not in out]
            if missing:
                stored = self._backend.by_key_id(missing)
                for k_id in missing:
                    key = stored.get(k_id)
                    out[k_id] = None if key is None else _DataKey(k_id, key)
                    self._cache.put(("k", k_id), out[k_id])
        return out

    def _remember(self, subject_id: str, key: _DataKey) -> _DataKey:
        self._cache.put(("s", subject_id), key)
        self._cache.put(("k", key.key_id), key)
        return key

    def erase(self, subject_id: str) -> int:
        """Delete ``subject_id``'s key for good; return 1 if it had one, else 0.

        Its records stay in the log, unreadable: this process stops decrypting them at
        once, others within their cache's ``cache_ttl_s``.
        """
        with self._lock:
            key_id = self._backend.delete(subject_id)
            self._cache.pop(("s", subject_id))
            if key_id is not None:
                self._cache.put(("k", key_id), None)
        return 0 if key_id is None else 1

    def close(self) -> None:
        self._backend.close()
