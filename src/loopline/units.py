"""Time units in milliseconds, the one unit of time across loopline's stages (event
times, windows, decision times), defined once."""

from __future__ import annotations

import time

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


def now_ms() -> int:
    """The wall clock in milliseconds since 1970."""
    return int(time.time() * 1000)
