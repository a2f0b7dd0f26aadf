"""Circuit breakers: stop calling a dependency that keeps failing or running slow, and try
it again after a cool-down.

closed (calls go through) -> ``failures_to_open`` failures in a row -> open (calls are
skipped: the caller falls back at once instead of waiting on a dead dependency) ->
``reset_after_s`` later -> half-open (one call goes through: success closes the breaker,
failure opens it again). A call slower than its deadline counts as a failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass
class CircuitBreaker:
    name: str
    failures_to_open: int = 3
    reset_after_s: float = 2.0
    deadline_s: float = 0.02
    state: State = "closed"
    failures: int = 0
    opened_at: float = 0.0
    trips: int = 0
    clock: object = field(default=time.monotonic, repr=False)

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]

    def allow(self) -> bool:
        """Whether to call the dependency now."""
        if self.state == "open" and self._now() - self.opened_at >= self.reset_after_s:
            self.state = "half_open"
        return self.state != "open"

    def record(self, ok: bool, seconds: float = 0.0) -> None:
        """The outcome of a call (slower than the deadline counts as a failure)."""
        if ok and seconds <= self.deadline_s:
            self.failures, self.state = 0, "closed"
            return
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.failures_to_open:
            if self.state != "open":
                self.trips += 1
            self.state, self.opened_at = "open", self._now()
