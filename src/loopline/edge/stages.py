"""A real-time pipeline of stages, each on its own thread, joined by bounded queues, with a
deadline per item.

An item is stamped when it enters (its capture time). A stage that takes an item already
past the deadline does not process it: the item is *late* and travels on as such, so that
a stage that must know of every item (a tracker predicting through a missed frame) gets
its ``on_late`` call, and the sink counts it. A queue that is full drops its oldest item
(the freshest data wins in real time), counted too; a later stage with ``on_late`` gets a
call for it when it sees the gap in sequence numbers, on its own thread (a stage's state
is only ever touched by its thread). Nothing waits without bound, and
every stage reports a heartbeat per item, so a watchdog sees a stage that hangs.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# a stage's heartbeat after each item: its name, and what it raised on the item (None: fine)
Beat = Callable[[str, BaseException | None], None]


@dataclass(frozen=True)
class Stage:
    """One step: ``run(value) -> value``; ``on_late(seq)`` when a late item passes (else
    the item only passes)."""

    name: str
    run: Callable[[Any], Any]
    on_late: Callable[[int], None] | None = None


@dataclass
class Item:
    seq: int
    born: float  # time.perf_counter() at entry
    value: Any
    late: bool = False


@dataclass
class Counts:
    submitted: int = 0
    published: int = 0
    late: int = 0  # missed the deadline: dropped, with on_late calls downstream
    overflow: int = 0  # dropped because a queue was full
    errors: int = 0  # a stage raised: the item is dropped like a late one
    latencies_ms: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=100_000)
    )

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def miss_rate(self) -> float:
        """Items that did not come out in time, of those submitted."""
        return (self.late + self.overflow + self.errors) / max(self.submitted, 1)


class StagePipeline:
    """``stages`` in order; what the last returns goes to ``sink(seq, value, latency_ms)``.

    Args:
        deadline_ms: An item older than this when a stage takes it, or when the last stage
            ends, is late.
        queue_size: Items each queue holds; a full one drops its oldest.
        beat: Called after each item a stage handles, with the stage's name and the
            exception it raised on the item, if it did (a watchdog's heartbeat; the item
            is then dropped and the pipeline goes on).
    """

    def __init__(
        self, stages: list[Stage], sink: Callable[[int, Any, float], None], *,
        deadline_ms: float, queue_size: int = 2, beat: Beat | None = None,
    ) -> None:  # fmt: skip
        self.stages, self.sink = stages, sink
        self.deadline_s = deadline_ms / 1000.0
        self.beat = beat or (lambda name, error: None)
        self.counts = Counts()
        self._queues: list[queue.Queue[Item | None]] = [queue.Queue(queue_size) for _ in stages]
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"stage-{s.name}", daemon=True)
            for i, s in enumerate(stages)
        ]
        self._seq = 0

    def start(self) -> StagePipeline:
        for t in self._threads:
            t.start()
        return self

    def submit(self, value: Any, born: float | None = None) -> int:
        """Put ``value`` in (stamped now, or at ``born``); return its sequence number."""
        with self._lock:
            seq = self._seq
            self._seq += 1
            self.counts.submitted += 1
        self._put(0, Item(seq, time.perf_counter() if born is None else born, value))
        return seq

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Let what is queued through, then end every stage's thread, waiting at most
        ``timeout_s`` in all; return whether they all ended (a stage that hangs keeps its
        thread, a daemon). The stop travels like an item: a full queue drops its oldest
        for it, and an item dropped then gets no ``on_late`` (no later item shows the gap)."""
        self._put(0, None)
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(deadline - time.monotonic(), 0.0))
        return not any(t.is_alive() for t in self._threads)

    def _put(self, i: int, item: Item | None) -> None:
        q = self._queues[i]
        while True:
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    dropped = q.get_nowait()
                except queue.Empty:
                    continue
                if dropped is not None and not dropped.late:  # a late one is counted
                    with self._lock:  # later stages see the gap (see _work)
                        self.counts.overflow += 1

    def _work(self, i: int) -> None:
        stage, last = self.stages[i], i == len(self.stages) - 1
        seen = -1
        while True:
            item = self._queues[i].get()
            if item is None:
                if not last:
                    self._put(i + 1, None)
                return
            for missing in range(seen + 1, item.seq):  # dropped upstream: this thread's call
                self._late(stage, missing)
            seen = item.seq
            error = self._handle(stage, item)
            with contextlib.suppress(Exception):  # a watchdog's failure stops no stage
                self.beat(stage.name, error)
            if last:
                self._finish(item)
            else:
                self._put(i + 1, item)

    def _handle(self, stage: Stage, item: Item) -> Exception | None:
        if not item.late and time.perf_counter() - item.born > self.deadline_s:
            item.late = True
            with self._lock:
                self.counts.late += 1
        if item.late:
            return self._late(stage, item.seq)
        try:
            item.value = stage.run(item.value)
        except Exception as exc:  # a stage's failure drops its item, not the pipeline
            item.late = True
            with self._lock:
                self.counts.errors += 1
            return exc
        return None

    def _late(self, stage: Stage, seq: int) -> Exception | None:
        if stage.on_late is None:
            return None
        try:
            stage.on_late(seq)
        except Exception as exc:  # the heartbeat reports it; the item is already counted
            return exc
        return None

    def _finish(self, item: Item) -> None:
        if item.late:
            return
        latency = time.perf_counter() - item.born
        if latency > self.deadline_s:
            with self._lock:
                self.counts.late += 1
            return
        try:
            self.sink(item.seq, item.value, latency * 1000.0)
        except Exception:  # the item did not get out: an error, and the sink goes on
            with self._lock:
                self.counts.errors += 1
            return
        with self._lock:
            self.counts.published += 1
            self.counts.latencies_ms.append(latency * 1000.0)


@contextlib.contextmanager
def pinned(core: int | None) -> Iterator[None]:
    """Run on one CPU core (threads started inside inherit it), as on a device with one
    core to spare, or to measure a figure per core."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core if core in before else min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
