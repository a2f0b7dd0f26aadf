"""Repeat offenders, rate-limited: each confirmed violation is a strike whose weight decays,
and a user whose strikes add up past a limit waits until they decay.

A user's score at time ``t`` is the sum of their strikes' severities, each halved every
``half_life_s`` since it was struck::

    score(t) = sum_i severity_i * 2 ** (-(t - t_i) / half_life_s)

It is kept as one number per user and decayed when next touched, which gives the same
sum. Above ``limit`` the user is limited; the score falls back to the limit after::

    retry_after = half_life_s * log2(score(t) / limit)

Bounded: at most ``capacity`` users, the least recently seen forgotten first. Users are
stored under a keyed hash (HMAC-SHA-256 with a secret given at construction), never
their ids, so the table holds no personal data a leak would reveal.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import OrderedDict

from loopline.exceptions import ConfigError


class Offenders:
    """Decaying strikes per user, and the rate limit they earn.

    Args:
        secret: The HMAC key users are hashed with (at least 16 bytes; keep it out of
            the code, e.g. in a settings file).
        capacity: The most users remembered.
        half_life_s: Seconds for a strike's weight to halve.
        limit: The score above which a user is limited.

    Example:
        >>> o = Offenders(b"0123456789abcdef", half_life_s=3600, limit=8)
        >>> for _ in range(3):
        ...     o.strike("u1", 4, now=0.0)
        >>> allowed, retry_after = o.allowed("u1", now=0.0)
        >>> allowed, round(retry_after)  # 3600 * log2(12 / 8)
        (False, 2106)
    """

    def __init__(
        self, secret: bytes, *, capacity: int = 100_000, half_life_s: float = 86_400.0,
        limit: float = 10.0,
    ) -> None:  # fmt: skip
        if not isinstance(secret, bytes) or len(secret) < 16:
            raise ConfigError("Offenders' 'secret' must be at least 16 bytes (an HMAC key).")
        if capacity < 1 or not half_life_s > 0 or not limit > 0:
            raise ConfigError(
                f"Offenders needs capacity >= 1, half_life_s > 0 and limit > 0. Got "
                f"{capacity}, {half_life_s}, {limit}."
            )
        self.secret = secret
        self.capacity = capacity
        self.half_life_s = half_life_s
        self.limit = limit
        self.evicted_ = 0  # users forgotten to stay within capacity
        self._users: OrderedDict[bytes, tuple[float, float]] = OrderedDict()  # (score, at)
        self._lock = threading.Lock()  # the service's threads strike and check at once

    def __len__(self) -> int:
        return len(self._users)

    def pseudonym(self, user: str) -> str:
        """The user's keyed hash, as text: what logs may hold instead of the id."""
        return self._key(user).hex()[:32]

    def _key(self, user: str) -> bytes:
        if not isinstance(user, str) or not user:
            raise ValueError(f"A user id must be non-empty text. Got {user!r:.80}.")
        return hmac.new(self.secret, user.encode(), hashlib.sha256).digest()

    def _decayed(self, key: bytes, now: float) -> float:
        score, at = self._users.get(key, (0.0, now))
        return score * math.exp2(-max(0.0, now - at) / self.half_life_s)

    def score(self, user: str, now: float | None = None) -> float:
        """The user's decayed score now (0 for a user never struck or forgotten)."""
        key, now = self._key(user), _now(now)
        with self._lock:
            return self._decayed(key, now)

    def strike(self, user: str, severity: float, now: float | None = None) -> None:
        """Add a strike of ``severity`` (e.g. the category's 1-5) to the user's score."""
        if isinstance(severity, bool) or not isinstance(severity, int | float):
            raise ValueError(f"A strike's severity must be a number. Got {severity!r:.80}.")
        if not 0 < severity < math.inf:
            raise ValueError(f"A strike's severity must be positive and finite. Got {severity}.")
        key, now = self._key(user), _now(now)
        with self._lock:
            self._users[key] = (self._decayed(key, now) + severity, now)
            self._users.move_to_end(key)
            while len(self._users) > self.capacity:
                self._users.popitem(last=False)
                self.evicted_ += 1

    def allowed(self, user: str, now: float | None = None) -> tuple[bool, float]:
        """Whether the user may post now, and if not, in how many seconds they may."""
        key, now = self._key(user), _now(now)
        with self._lock:
            if key not in self._users:
                return True, 0.0
            self._users.move_to_end(key)  # seen
            score = self._decayed(key, now)
        if score <= self.limit:
            return True, 0.0
        return False, self.half_life_s * math.log2(score / self.limit)


def _now(now: float | None) -> float:
    if now is None:
        return time.time()
    if not math.isfinite(now):
        raise ValueError(f"'now' must be a finite time in seconds. Got {now!r}.")
    return now
