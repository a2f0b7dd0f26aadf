"""A watchdog over the components of a running system: each component sends heartbeats
carrying its own level, and one that stays silent longer than its timeout is marked
``TIMEOUT``. A check reduces every component to one overall level, the worst of them, with
the components that are not OK and why.

The levels are ROS's ``diagnostic_aggregator`` levels (OK, WARN, ERROR, STALE), STALE being
named ``TIMEOUT`` here; the reduction to the worst level is the aggregator's too.

Thread-safe: components beat from their own threads while a supervisor checks. Times are
milliseconds from an injectable clock (a monotonic one by default), so tests drive time
explicitly, and every call takes ``now_ms`` as well.

Example:
    >>> dog = Watchdog(clock=lambda: 0)
    >>> dog.register("reader", timeout_ms=100)
    >>> dog.beat("reader", now_ms=50)
    >>> dog.check(120).level.name
    'OK'
    >>> dog.check(200).reasons
    ('reader: TIMEOUT no heartbeat for 150 ms (timeout 100 ms)',)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from loopline.exceptions import ConfigError


class Level(IntEnum):
    """How a component is doing, from best to worst, so that ``max`` reduces levels."""

    OK = 0
    WARN = 1  # degraded, still usable
    ERROR = 2  # not usable
    TIMEOUT = 3  # no heartbeat within the component's timeout (ROS's STALE)


def monotonic_ms() -> int:
    """A monotonic clock in milliseconds: the watchdog's default clock."""
    return time.monotonic_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Status:
    """One component as a check saw it.

    ``since_ms`` is when its current level began: the onset given by its heartbeat (a
    debounced check knows when its condition started), or the first heartbeat at that
    level; for ``TIMEOUT``, the last heartbeat, the last moment it was known to work.
    """

    component: str
    level: Level
    message: str
    since_ms: int
    last_beat_ms: int


@dataclass(frozen=True, slots=True)
class Health:
    """The result of a check: the worst level and the components that are not OK, worst
    first, earliest onset first within a level."""

    level: Level
    checked_ms: int
    faults: tuple[Status, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f"{s.component}: {s.level.name} {s.message}".rstrip() for s in self.faults)


@dataclass(frozen=True, slots=True)
class Change:
    """A change of level in the history: of one component, or of the overall level
    (``component`` is ``None``)."""

    t_ms: int
    component: str | None
    level: Level
    message: str


@dataclass(slots=True)
class _Component:
    timeout_ms: int
    last_beat_ms: int
    since_ms: int
    level: Level = Level.OK  # the last heartbeat's level
    message: str = ""
    timed_out: bool = False

    @property
    def effective(self) -> Level:
        return Level.TIMEOUT if self.timed_out else self.level


class Watchdog:
    """Heartbeats of registered components, checked against their timeouts.

    Args:
        max_changes: How many level changes the history keeps (the oldest go first).
        clock: Milliseconds now, for calls that are not given ``now_ms``.
    """

    def __init__(self, *, max_changes: int = 1024, clock: Callable[[], int] = monotonic_ms) -> None:
        if max_changes < 1:
            raise ConfigError(f"The 'max_changes' of a Watchdog must be >= 1. Got {max_changes}.")
        self.max_changes = max_changes
        self.clock = clock
        self._lock = threading.Lock()
        self._components: dict[str, _Component] = {}
        self._overall = Level.OK
        self._changes: deque[Change] = deque(maxlen=max_changes)

    @property
    def components(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._components)

    def register(self, component: str, *, timeout_ms: int, now_ms: int | None = None) -> None:
        """Watch ``component``: OK from now, until a heartbeat says otherwise or none comes
        for more than ``timeout_ms``."""
        if timeout_ms <= 0:
            raise ConfigError(
                f"The heartbeat timeout of component {component!r} must be a positive number "
                f"of milliseconds. Got {timeout_ms}."
            )
        now = self.clock() if now_ms is None else now_ms
        with self._lock:
            if component in self._components:
                raise ConfigError(f"Component {component!r} is already registered; register once.")
            self._components[component] = _Component(timeout_ms, last_beat_ms=now, since_ms=now)

    def beat(
        self,
        component: str,
        level: Level = Level.OK,
        message: str = "",
        now_ms: int | None = None,
        *,
        onset_ms: int | None = None,
    ) -> None:
        """A heartbeat of ``component`` at ``level``; ``onset_ms``, when its condition began
        earlier than now (kept while the level stays the same)."""
        now = self.clock() if now_ms is None else now_ms
        level = Level(level)
        with self._lock:
            c = self._get(component)
            if level != c.effective:
                c.since_ms = now if onset_ms is None else min(onset_ms, now)
                self._changes.append(Change(now, component, level, message))
            c.level, c.message, c.last_beat_ms, c.timed_out = level, message, now, False

    def check(self, now_ms: int | None = None) -> Health:
        """Mark the components silent for longer than their timeout as ``TIMEOUT``, and
        reduce all of them to one level, the worst."""
        now = self.clock() if now_ms is None else now_ms
        with self._lock:
            faults = [
                s for name, c in self._components.items() if (s := self._status(name, c, now))
            ]
            faults.sort(key=lambda s: (-s.level, s.since_ms, s.component))
            level = faults[0].level if faults else Level.OK
            health = Health(level, now, tuple(faults))
            if level != self._overall:
                self._overall = level
                self._changes.append(Change(now, None, level, "; ".join(health.reasons)))
            return health

    def history(self) -> list[Change]:
        """The level changes kept, oldest first."""
        with self._lock:
            return list(self._changes)

    def _status(self, name: str, c: _Component, now: int) -> Status | None:
        silent = now - c.last_beat_ms
        if c.timed_out or silent > c.timeout_ms:
            last = f"; last: {c.level.name} {c.message}".rstrip() if c.level or c.message else ""
            message = f"no heartbeat for {silent} ms (timeout {c.timeout_ms} ms){last}"
            if not c.timed_out:
                c.timed_out, c.since_ms = True, c.last_beat_ms
                self._changes.append(Change(now, name, Level.TIMEOUT, message))
            return Status(name, Level.TIMEOUT, message, c.since_ms, c.last_beat_ms)
        if c.level is Level.OK:
            return None
        return Status(name, c.level, c.message, c.since_ms, c.last_beat_ms)

    def _get(self, component: str) -> _Component:
        try:
            return self._components[component]
        except KeyError:
            known = ", ".join(sorted(self._components)) or "none"
            raise ConfigError(
                f"No component {component!r} is registered with the Watchdog (registered: "
                f"{known}). Call register({component!r}, timeout_ms=...) first."
            ) from None
