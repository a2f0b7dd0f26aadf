"""A device's queue of uploads to the cloud: bounded, by priority, drained within a budget.

A device records more than its link can carry (samples it was unsure of, failures, logs),
so :class:`UploadQueue` keeps at most ``max_items`` items and ``max_bytes`` bytes. When a
new item would pass a bound, the item that would be sent last (the lowest priority, the
newest among equals) is evicted: counted, logged and handed to ``on_evict`` (to delete
its file, say), never dropped silently. :meth:`UploadQueue.drain` takes what fits in one
window's bandwidth budget, highest priority first and oldest first among equals; an item
larger than what is left is skipped, not split, and smaller ones after it still go.

Example:
    >>> q = UploadQueue(max_items=100, max_bytes=10_000)
    >>> q.put(Upload(id="a", priority=1, size=600, reason="sample", payload=b"x" * 600))
    >>> q.put(Upload(id="b", priority=5, size=500, reason="failure", payload=b"y" * 500))
    >>> [u.id for u in q.drain(budget_bytes=1000)]
    ['b']
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loopline.exceptions import ConfigError

log = logging.getLogger("loopline.edge")


@dataclass(frozen=True, kw_only=True, slots=True)
class Upload:
    """One thing to upload.

    Args:
        id: Unique in the queue; putting an id again replaces the queued item.
        priority: Higher goes first and is evicted last.
        size: Bytes it costs to send (``len(payload)`` for bytes).
        reason: Why it is sent, for the cloud side and the counters' logs.
        payload: The bytes, or the file that holds them.
    """

    id: str
    priority: int
    size: int
    reason: str
    payload: Path | bytes

    def __post_init__(self) -> None:
        if self.size < 0 or (isinstance(self.payload, bytes) and self.size != len(self.payload)):
            raise ConfigError(f"Upload {self.id!r}'s 'size' must be >= 0 and, for bytes, "
                              f"their length. Got {self.size}.")  # fmt: skip


@dataclass(kw_only=True, slots=True)
class UploadCounters:
    """What the queue did since it was made."""

    queued: int = 0
    sent: int = 0
    sent_bytes: int = 0
    evicted: int = 0
    evicted_bytes: int = 0
    replaced: int = 0


class UploadQueue:
    """Uploads waiting for bandwidth, bounded.

    Args:
        max_items: The most items held.
        max_bytes: The most bytes held; a larger item is evicted on arrival.
        on_evict: Called with each evicted item.
    """

    def __init__(
        self,
        *,
        max_items: int,
        max_bytes: int,
        on_evict: Callable[[Upload], None] | None = None,
    ) -> None:
        if max_items < 1 or max_bytes < 0:
            raise ConfigError(f"An UploadQueue needs max_items >= 1 and max_bytes >= 0. Got "
                              f"{max_items} and {max_bytes}.")  # fmt: skip
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.on_evict = on_evict
        self.counters_ = UploadCounters()
        self._items: dict[str, tuple[int, Upload]] = {}  # id -> (arrival, item)
        self._bytes = 0
        self._arrivals = itertools.count()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def put(self, item: Upload) -> None:
        """Queue ``item``, then evict (lowest priority, newest first) until within bounds."""
        if item.id in self._items:
            self._remove(item.id)
            self.counters_.replaced += 1
        self._items[item.id] = (next(self._arrivals), item)
        self._bytes += item.size
        self.counters_.queued += 1
        while len(self._items) > self.max_items or self._bytes > self.max_bytes:
            victim = item if item.size > self.max_bytes else self._last()
            self._remove(victim.id)
            self.counters_.evicted += 1
            self.counters_.evicted_bytes += victim.size
            log.warning(
                "upload %s (%s, priority %d, %d B) evicted: the queue is full",
                victim.id, victim.reason, victim.priority, victim.size,
                extra={"event": "upload_evicted", "upload": victim.id, "reason": victim.reason},
            )  # fmt: skip
            if self.on_evict is not None:
                self.on_evict(victim)

    def drain(self, budget_bytes: int) -> list[Upload]:
        """Remove and return what fits in ``budget_bytes``, highest priority first: the
        caller sends them, and puts back any that fail."""
        if budget_bytes < 0:
            raise ConfigError(f"drain's 'budget_bytes' must be >= 0. Got {budget_bytes}.")
        sent = []
        for _, item in sorted(self._items.values(), key=lambda e: (-e[1].priority, e[0])):
            if item.size <= budget_bytes:
                budget_bytes -= item.size
                sent.append(item)
        for item in sent:
            self._remove(item.id)
        self.counters_.sent += len(sent)
        self.counters_.sent_bytes += sum(u.size for u in sent)
        return sent

    def _last(self) -> Upload:
        """The item drain would send last: lowest priority, newest among equals."""
        return max(self._items.values(), key=lambda e: (-e[1].priority, e[0]))[1]

    def _remove(self, upload_id: str) -> None:
        _, item = self._items.pop(upload_id)
        self._bytes -= item.size
