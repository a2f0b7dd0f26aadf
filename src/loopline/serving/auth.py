"""API keys with scopes, stored as SHA-256 digests and compared in constant time.

A key is shown once, when made (``loopline serve key --scope score``); the service keeps
only its digest. Checking a presented key compares its digest with every stored one
(``hmac.compare_digest``), so the time taken tells nothing about which key was close.
A key may expire, and may be revoked (``loopline serve key --revoke NAME``); the service
reads the key file again when it changes, so neither needs a restart.

Scopes: ``score`` (ask for predictions), ``detail`` (see exact scores and attributions
in answers), ``monitor`` (the monitoring data), ``label`` (people who give verdicts that
become labels), ``admin`` (everything).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from loopline.exceptions import ConfigError
from loopline.files import write_private

log = logging.getLogger("loopline.serving")
SCOPES = ("score", "detail", "monitor", "label", "admin")


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    scopes: frozenset[str]
    expires_ms: int | None = None  # ms since 1970; None: never
    revoked: bool = False

    def valid(self, now_ms: int) -> bool:
        return not self.revoked and (self.expires_ms is None or now_ms < self.expires_ms)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def presented(api_key: str | None, authorization: str | None) -> str | None:
    """The key a request presents: its ``X-API-Key``, else its ``Authorization: Bearer``
    (what OpenAI's clients send)."""
    if api_key is not None or authorization is None:
        return api_key
    return authorization[7:].strip() if authorization[:7].lower() == "bearer " else None


def new_key(name: str, scopes: list[str], *, expires_ms: int | None = None) -> tuple[str, ApiKey]:
    """A fresh random key (returned once) and its stored form."""
    bad = sorted(set(scopes) - set(SCOPES))
    if bad or not scopes:
        raise ConfigError(f"Scopes must be among {list(SCOPES)}; got {scopes}.")
    key = f"ll_{secrets.token_urlsafe(32)}"
    return key, ApiKey(name, digest(key), frozenset(scopes), expires_ms)


class KeyRing:
    """The service's keys; :meth:`identify` answers whose a presented key is.

    Args:
        keys: The keys.
        path: The file they came from: :meth:`refresh` reads it again when it changed.
    """

    def __init__(self, keys: list[ApiKey], path: Path | None = None) -> None:
        self.keys = keys
        self.path = path
        self._mtime = _mtime(path)

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        return cls(_read(path), path)

    def save(self, path: Path) -> None:
        body = {"keys": [_stored(k) for k in self.keys]}
        write_private(path, json.dumps(body, indent=2).encode())

    def refresh(self) -> bool:
        """Read the key file again if it changed (a revoked or added key); a broken
        file keeps the keys as they were. Returns whether the keys changed."""
        if self.path is None or _mtime(self.path) == self._mtime:
            return False
        self._mtime = _mtime(self.path)
        try:
            self.keys = _read(self.path)
        except ConfigError:
            log.warning("API key file unreadable: the keys stay as they were", exc_info=True)
            return False
        return True

    def revoke(self, name: str) -> int:
        """Revoke every key named ``name``; returns how many."""
        found = [k for k in self.keys if k.name == name and not k.revoked]
        self.keys = [
            ApiKey(k.name, k.sha256, k.scopes, k.expires_ms, True) if k in found else k
            for k in self.keys
        ]
        return len(found)

    def identify(self, presented: str | None) -> ApiKey | None:
        """The valid key ``presented`` is (None: missing, unknown, expired or revoked)."""
        if not presented:
            return None
        mine = digest(presented)
        found = None
        for k in self.keys:  # every key is compared: no early exit to time
            if hmac.compare_digest(mine, k.sha256):
                found = k
        return found if found is not None and found.valid(int(time.time() * 1000)) else None

    def scopes_of(self, presented: str | None) -> frozenset[str]:
        key = self.identify(presented)
        return key.scopes if key is not None else frozenset()


def _stored(k: ApiKey) -> dict[str, object]:
    out: dict[str, object] = {"name": k.name, "sha256": k.sha256, "scopes": sorted(k.scopes)}
    if k.expires_ms is not None:
        out["expires_ms"] = k.expires_ms
    if k.revoked:
        out["revoked"] = True
    return out


def _read(path: Path) -> list[ApiKey]:
    try:
        raw = json.loads(path.read_text())
        return [
            ApiKey(
                k["name"],
                k["sha256"],
                frozenset(k["scopes"]),
                k.get("expires_ms"),
                bool(k.get("revoked", False)),
            )
            for k in raw["keys"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"API key file {path}: {exc!r}. Make one with `loopline serve key`."
        ) from None


def _mtime(path: Path | None) -> float | None:
    try:
        return path.stat().st_mtime if path is not None else None
    except OSError:
        return None
