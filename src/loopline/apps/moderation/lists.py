"""Known items, matched before any model runs (microseconds): the hashes of known harmful
messages (after normalization, so a re-spaced or leetspeak copy still matches, the way
hash-sharing consortia exchange known content) and blocked link domains.

Only digests of known messages are kept, never their text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from loopline.apps.moderation.taxonomy import CATEGORIES
from loopline.exceptions import ConfigError

MAX_ENTRIES: Final = 1_000_000
_DOMAIN = re.compile(r"(?:https?://)?(?:www\.)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?:[/?#]\S*)?")


def digest(normalized: str) -> str:
    return hashlib.sha256(normalized.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Hit:
    category: str
    source: str  # "message" or "domain:<domain>"


@dataclass
class TextList:
    """Known messages (by digest of their normalized text) and blocked domains."""

    messages: dict[str, str] = field(default_factory=dict)  # digest -> category
    domains: dict[str, str] = field(default_factory=dict)  # domain -> category

    def add_message(self, normalized: str, category: str) -> None:
        self._check(category)
        self.messages[digest(normalized)] = category

    def add_domain(self, domain: str, category: str) -> None:
        self._check(category)
        self.domains[domain.lower().removeprefix("www.")] = category

    def _check(self, category: str) -> None:
        if category not in CATEGORIES:
            raise ConfigError(f"Unknown category {category!r}; known: {', '.join(CATEGORIES)}.")
        if len(self.messages) + len(self.domains) >= MAX_ENTRIES:
            raise ConfigError(f"The known-items list is full ({MAX_ENTRIES} entries).")

    def match(self, normalized: str, original: str = "") -> list[Hit]:
        """Known messages by ``normalized`` text; blocked domains in it and in the
        ``original`` text (normalizing reads "bad4u.com" as "badau.com")."""
        hits = []
        category = self.messages.get(digest(normalized))
        if category is not None:
            hits.append(Hit(category, "message"))
        if self.domains:
            seen = {d for text in (normalized, original.casefold()) if "." in text
                    for d in _domains(text)}  # fmt: skip
            for domain in sorted(seen):
                category = self.domains.get(domain)
                if category is not None:
                    hits.append(Hit(category, f"domain:{domain}"))
        return hits

    def to_json(self) -> bytes:
        return json.dumps({"messages": self.messages, "domains": self.domains}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> TextList:
        raw = json.loads(data)
        out = cls()
        for d, category in raw.get("messages", {}).items():
            out._check(category)
            out.messages[str(d)] = category
        for domain, category in raw.get("domains", {}).items():
            out.add_domain(domain, category)
        return out


def _domains(text: str) -> Iterable[str]:
    for m in _DOMAIN.finditer(text):
        parts = m.group(1).split(".")
        for i in range(len(parts) - 1):  # sub.bad.example -> bad.example too
            yield ".".join(parts[i:])
