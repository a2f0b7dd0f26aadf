"""Keyed ``GET`` routes of a service: ``GET <prefix><key>`` answers with what the
application keeps under ``key`` for the calling key's name (a background job's answer,
say), or 404. Keys are 1-64 of ``A-Za-z0-9_.:-``; metrics label a lookup by its prefix,
never by its key (bounded label values)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from loopline.exceptions import ConfigError
from loopline.serving.problems import refuse

Lookup = Callable[[str, str], bytes | None]  # (key, caller) -> JSON body, or None
_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class Lookups:
    """The lookups by prefix (each ending in ``/``): ``(scope, find)``."""

    def __init__(self, lookups: Mapping[str, tuple[str, Lookup]] | None = None) -> None:
        self.by_prefix = dict(lookups or {})
        if any(not p.startswith("/") or not p.endswith("/") for p in self.by_prefix):
            raise ConfigError(
                f"Lookup prefixes must start and end with '/': {list(self.by_prefix)}."
            )

    @property
    def routes(self) -> list[str]:
        """Their metric labels: ``GET <prefix>{key}``."""
        return [f"GET {p}{{key}}" for p in self.by_prefix]

    def match(self, path: str) -> tuple[str, str, Lookup] | None:
        """The scope ``path`` needs, its key and the lookup, if a prefix matches."""
        for prefix, (needed, find) in self.by_prefix.items():
            if path.startswith(prefix):
                return needed, path[len(prefix) :], find
        return None

    @staticmethod
    def answer(route: str, key: str, caller: str, find: Lookup) -> bytes:
        """What ``find`` keeps under ``key`` for ``caller``; a 404 for a malformed key or
        nothing kept."""
        if not _KEY.fullmatch(key):
            raise refuse(404, f"No route {route}.", detail="A key is 1-64 of A-Za-z0-9_.:-")
        body = find(key, caller)
        if body is None:
            raise refuse(404, f"Nothing is kept under {key!r}.", field="key")
        return body

    def label(self, route: str) -> str:
        """A lookup's metric label for ``route`` (``other`` when it is none)."""
        for prefix in self.by_prefix:
            if route.startswith(f"GET {prefix}"):
                return f"GET {prefix}{{key}}"
        return "other"
