"""Folding predicted events into the online features on the request path, in
micro-batches: applying one event costs about what 64 do.

An event is applied once ``BATCH`` are pending or ``EVERY_S`` after the last flush,
whichever first, so an entity's next event within that moment may not see this one
yet. While the store is away (its breaker open) events wait, at most ``MAX_PENDING``
of them (the oldest dropped beyond that); the backlog is then applied ``CATCH_UP`` at a
time, one chunk every ``EVERY_S`` (measured: 3,600 at once held the event loop ~100 ms,
past the request budget).
"""

from __future__ import annotations

import time

import numpy as np

from loopline.features import OnlineEngine
from loopline.serving.resilience import CircuitBreaker

BATCH = 64
EVERY_S = 0.02
MAX_PENDING = 100_000
CATCH_UP = 128


class Learner:
    """Pending events (as one-row columns) for ``topic``'s views of ``engine``."""

    def __init__(self, engine: OnlineEngine, *, topic: str, breaker: CircuitBreaker) -> None:
        self.engine, self.topic, self.breaker = engine, topic, breaker
        self.failures = 0
        self._pending: list[tuple[float, dict[str, np.ndarray]]] = []  # (since, columns)
        self._since = time.monotonic()

    @property
    def pending(self) -> int:
        """Events not yet applied to the online features."""
        return len(self._pending)

    def lag_s(self) -> float:
        """How long the oldest event not yet applied has waited (0: none)."""
        return time.monotonic() - self._pending[0][0] if self._pending else 0.0

    def add(self, columns: dict[str, np.ndarray]) -> None:
        now = time.monotonic()
        self._pending.append((now, columns))
        if now - self._since >= EVERY_S or len(self._pending) == BATCH:
            self.flush(CATCH_UP)

    def catch_up(self) -> None:
        """A chunk of the backlog, if one is due (called before each batch is read)."""
        if self._pending and time.monotonic() - self._since >= EVERY_S:
            self.flush(CATCH_UP)

    def flush(self, limit: int | None = None) -> None:
        """Apply the pending events now, oldest first (``limit``: at most that many)."""
        self._since = time.monotonic()
        if not self._pending:
            return
        if not self.breaker.allow():
            del self._pending[:-MAX_PENDING]  # bounded while the store is away
            return
        chunk = [columns for _, columns in self._pending[:limit]]
        batch = {k: np.concatenate([c[k] for c in chunk]) for k in chunk[0]}
        try:
            self.engine.apply_many(batch, topic=self.topic)
            self.engine.commit(0)  # the store snapshots on its own schedule
        except Exception:  # kept for the next flush; answers are unaffected
            self.breaker.record(False)
            self.failures += 1
            return
        del self._pending[: len(chunk)]
