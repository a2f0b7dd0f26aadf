"""Rate limits per API key in units a request costs (tokens, for a language model): a
token bucket per key that refills at ``per_minute`` a minute and holds at most a
minute's worth.

A request reserves what it may cost before it runs (its prompt and its ``max_tokens``)
and gives back what it did not use when it ends, so a burst of long requests cannot
overshoot the limit while they run, and short answers do not count as long ones. A
request refused gets a 429 with ``retry-after``: the seconds until its cost is back in
the bucket. The buckets are bounded: the least recently used key's bucket goes first
(a full bucket is what a new one starts as, so forgetting an idle key changes nothing).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from loopline.exceptions import ConfigError
from loopline.serving.problems import refuse


class Quota:
    """Token buckets by key name.

    Args:
        per_minute: Units a key may spend a minute (its bucket's size, too).
        overrides: Other limits for some keys, by name.
        max_keys: Buckets kept at most.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        overrides: Mapping[str, int] | None = None,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        limits = [per_minute, *(overrides or {}).values()]
        if min(limits) <= 0 or max_keys <= 0:
            raise ConfigError("Quota: per_minute, overrides and max_keys must be positive.")
        self.per_minute = per_minute
        self.overrides = dict(overrides or {})
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # level, at
        self._lock = threading.Lock()

    def limit(self, key: str) -> int:
        return self.overrides.get(key, self.per_minute)

    def _level(self, key: str, now: float) -> float:
        limit = self.limit(key)
        level, at = self._buckets.get(key, (limit, now))
        return min(limit, level + (now - at) * limit / 60)

    def take(self, key: str, cost: int, *, field: str = "max_tokens") -> None:
        """Spend ``cost`` of ``key``'s bucket, or raise a 429 (a 422 naming ``field``
        for a cost no bucket could ever hold)."""
        limit = self.limit(key)
        if cost > limit:
            raise refuse(
                422, f"This request may cost {cost} tokens; the key's limit is {limit} a minute.",
                field=field, detail="Ask for fewer tokens or send a shorter prompt.",
            )  # fmt: skip
        with self._lock:
            now = self.clock()
            level = self._level(key, now)
            if level < cost:
                wait = math.ceil((cost - level) * 60 / limit)
                raise refuse(
                    429, f"Rate limit: {limit} tokens a minute for this key.",
                    detail=f"Retry after {wait} s.", headers=[(b"retry-after", str(wait).encode())],
                )  # fmt: skip
            self._put(key, level - cost, now)

    def give_back(self, key: str, unused: int) -> None:
        """Return what a request reserved and did not use."""
        if unused <= 0:
            return
        with self._lock:
            now = self.clock()
            self._put(key, self._level(key, now) + unused, now)

    def _put(self, key: str, level: float, now: float) -> None:
        self._buckets[key] = (min(level, self.limit(key)), now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
