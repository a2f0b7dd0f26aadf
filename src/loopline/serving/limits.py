"""How much a service takes before it refuses: requests in flight, time to make an
answer durable, time for a body to arrive, admin bodies' size."""

from __future__ import annotations

from dataclasses import dataclass

from loopline.exceptions import ConfigError


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Back-pressure: beyond ``max_inflight`` requests, 503 + Retry-After instead of
    queueing; a prediction not durable ``commit_timeout_ms`` after its hand-over to the
    log is a 503 too (docs/decisions/0003); a body not all there ``body_timeout_s``
    after the headers is a 408; admin bodies up to ``max_admin_bytes``."""

    max_inflight: int = 256
    commit_timeout_ms: float = 50.0
    body_timeout_s: float = 10.0
    max_admin_bytes: int = 16 * 1024

    def __post_init__(self) -> None:
        if self.max_inflight < 0 or self.commit_timeout_ms <= 0 or self.body_timeout_s <= 0:
            raise ConfigError(
                "Limits: max_inflight must be >= 0, commit_timeout_ms and body_timeout_s > 0."
            )
