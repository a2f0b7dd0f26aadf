"""API keys with scopes, stored as SHA-256 digests and compared in constant time.

A key is shown once, when made (``loopline serve key --scope score``); the service keeps
only its digest. Checking a presented key compares its digest with every stored one
(``hmac.compare_digest``), so the time taken tells nothing about which key was close.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from loopline.exceptions import ConfigError

SCOPES = ("score", "admin")


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    scopes: frozenset[str]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(name: str, scopes: list[str]) -> tuple[str, ApiKey]:
    """A fresh random key (returned once) and its stored form."""
    bad = sorted(set(scopes) - set(SCOPES))
    if bad or not scopes:
        raise ConfigError(f"Scopes must be among {list(SCOPES)}; got {scopes}.")
    key = f"ll_{secrets.token_urlsafe(32)}"
    return key, ApiKey(name, digest(key), frozenset(scopes))


class KeyRing:
    """The service's keys; :meth:`scopes_of` answers a presented key's scopes."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self.keys = keys

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"API key file {path}: {exc}. Make one with `loopline serve key`."
            ) from None
        return cls([ApiKey(k["name"], k["sha256"], frozenset(k["scopes"])) for k in raw["keys"]])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "keys": [
                {"name": k.name, "sha256": k.sha256, "scopes": sorted(k.scopes)} for k in self.keys
            ]
        }
        path.write_text(json.dumps(body, indent=2))
        path.chmod(0o600)

    def scopes_of(self, presented: str | None) -> frozenset[str]:
        if not presented:
            return frozenset()
        mine = digest(presented)
        found: frozenset[str] = frozenset()
        for k in self.keys:  # every key is compared: no early exit to time
            if hmac.compare_digest(mine, k.sha256):
                found = k.scopes
        return found
