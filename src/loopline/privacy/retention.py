"""Keeping each store's data no longer than its retention (GDPR art. 5(1)(e)).

:class:`Retention` says how many days each store keeps (``None``: forever);
:func:`expiries` turns it into one :class:`Expiry` per store, and a
:class:`RetentionJob` applies them every ``period_s``, at most ``limit`` records or rows
per store per pass, so a first pass over years of history does not hold a database lock
for minutes: it catches up over several passes, and logs its progress.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from loopline.exceptions import ConfigError

__all__ = ["Expiry", "Retention", "RetentionJob", "expiries"]

logger = logging.getLogger("loopline.privacy")
DAY_MS = 86_400_000


@dataclass(frozen=True, kw_only=True, slots=True)
class Retention:
    """Days each store keeps its data; ``None`` keeps it forever.

    Args:
        events_days: Event-log topics, by record time.
        predictions_days: The prediction log, by decision time.
        labels_days: The labels beside it, by the time each arrived.
        dead_letters_days: Dead letters, by the time they failed.
    """

    events_days: float | None = None
    predictions_days: float | None = None
    labels_days: float | None = None
    dead_letters_days: float | None = None

    def __post_init__(self) -> None:
        for name in ("events_days", "predictions_days", "labels_days", "dead_letters_days"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(
                    f"Retention {name!r} must be a positive number of days, or None to keep "
                    f"forever. Got {value!r}."
                )


@dataclass(frozen=True, slots=True)
class Expiry:
    """One store's retention: ``expire(older_than_ms, limit)`` deletes up to ``limit``
    of its oldest records or rows older than the cutoff and returns how many."""

    name: str
    days: float
    expire: Callable[[int, int], int]


def expiries(
    retention: Retention,
    *,
    log: Any = None,
    topics: Sequence[str] = (),
    dead_letters: Sequence[Any] = (),
    predictions: Any = None,
) -> list[Expiry]:
    """The expiries ``retention`` asks of these stores: ``log`` (an event log with
    ``expire``, for ``topics``, every topic when empty), ``dead_letters``
    (``DeadLetterQueue`` objects) and ``predictions`` (a prediction log with ``expire``
    and ``expire_labels``). A store without a retention is left alone."""
    out: list[Expiry] = []
    r = retention
    if r.events_days is not None and log is not None:
        out.append(
            Expiry("event log", r.events_days, lambda t, n: log.expire(t, topics=topics, limit=n))
        )
    if r.dead_letters_days is not None:
        out += [Expiry(q.topic, r.dead_letters_days, _expire_of(q)) for q in dead_letters]
    if predictions is not None and r.predictions_days is not None:
        out.append(
            Expiry(
                "prediction log", r.predictions_days, lambda t, n: predictions.expire(t, limit=n)
            )
        )
    if predictions is not None and r.labels_days is not None:
        out.append(
            Expiry("labels", r.labels_days, lambda t, n: predictions.expire_labels(t, limit=n))
        )
    return out


def _expire_of(queue: Any) -> Callable[[int, int], int]:
    return lambda older_than_ms, limit: int(queue.expire(older_than_ms, limit=limit))


class RetentionJob:
    """Applies expiries in the background: a thread (:meth:`start`) or an asyncio task
    (:meth:`run`, which runs each pass in a worker thread, off the event loop).

    Args:
        expiries: What to expire (:func:`expiries`).
        period_s: Time between passes.
        limit: The most records or rows each store deletes in one pass.
        clock: Seconds since the epoch (a simulation's clock in demos).
    """

    def __init__(
        self,
        expiries: Sequence[Expiry],
        *,
        period_s: float = 3600.0,
        limit: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if period_s <= 0 or limit < 1:
            raise ConfigError(
                f"RetentionJob needs period_s > 0 and limit >= 1. Got {period_s!r}, {limit!r}."
            )
        self.expiries = tuple(expiries)
        self.period_s = period_s
        self.limit = limit
        self.clock = clock
        self.passes = 0
        self.removed: dict[str, int] = {e.name: 0 for e in self.expiries}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> dict[str, int]:
        """One pass: each store deletes up to ``limit`` expired records; returns how
        many each did (equal to ``limit``: more are waiting for the next pass)."""
        now_ms = int(self.clock() * 1000)
        done: dict[str, int] = {}
        for e in self.expiries:
            try:
                done[e.name] = e.expire(now_ms - int(e.days * DAY_MS), self.limit)
            except Exception:  # one store down must not stop the others' retention
                logger.exception("retention pass: %s failed; retried next pass", e.name)
                done[e.name] = 0
            self.removed[e.name] += done[e.name]
        self.passes += 1
        if any(done.values()):
            behind = [n for n, c in done.items() if c >= self.limit]
            logger.info("retention pass %d removed %s; behind: %s", self.passes, done, behind)
        return done

    def start(self) -> None:
        """Run passes every ``period_s`` in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            self.run_once()
            if self._stop.wait(self.period_s):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    async def run(self) -> None:
        """The same passes as an asyncio task (a service's background task)."""
        while True:
            await asyncio.to_thread(self.run_once)
            await asyncio.sleep(self.period_s)
