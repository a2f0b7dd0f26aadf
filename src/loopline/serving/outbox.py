"""An outbox: messages handed over on the event loop, published by a thread of its own.

Publishing to a broker may block for seconds (a flush waits for acknowledgements; a
broker outage makes it wait for its timeout). On the event loop that would stop every
request and keep the commit timeout from firing, so the loop only puts messages on a
bounded queue; this thread publishes them in batches, retrying a failed batch with
backoff. When the queue is full (the broker has been away for long), new messages are
counted as dropped and logged: what they say is in the prediction log already, from
which they can be published again.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loopline.events.base import Message
from loopline.exceptions import TopicNotFoundError

if TYPE_CHECKING:
    from loopline.events import EventLog

T = TypeVar("T")
log = logging.getLogger("loopline.serving")
_STOP = object()


class Outbox(Generic[T]):
    """Publishes what :meth:`put_many` is given with ``publish`` (a batch at a time) on
    a thread of its own.

    Args:
        publish: Sends a batch; may block; raises when it failed.
        name: For the thread, the logs and the metrics.
        max_pending: The queue's bound.
        max_batch: The most messages per ``publish``.
        retry_s: The first wait after a failed batch (doubling, up to 5 s).
    """

    def __init__(
        self,
        publish: Callable[[Sequence[T]], None],
        *,
        name: str,
        max_pending: int = 10_000,
        max_batch: int = 500,
        retry_s: float = 0.1,
    ) -> None:
        self.publish, self.name = publish, name
        self.max_batch, self.retry_s = max_batch, retry_s
        self.published = self.dropped = self.failures = 0
        self._queue: queue.Queue[object] = queue.Queue(max_pending)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"outbox-{name}", daemon=True)
        self._thread.start()

    @staticmethod
    def to_topic(log: EventLog, topic: str, *, name: str | None = None) -> Outbox[bytes]:
        """An outbox of encoded messages to ``topic`` of ``log`` (created with one
        partition when missing)."""
        try:
            log.partitions(topic)
        except TopicNotFoundError:
            log.create_topic(topic, partitions=1)

        def publish(values: Sequence[bytes]) -> None:
            log.append_many(topic, [Message(v) for v in values])

        return Outbox(publish, name=name or topic)

    def put_many(self, items: Sequence[T]) -> None:
        """Hand ``items`` over; never blocks (a full queue drops and counts them)."""
        for item in items:
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self.dropped += 1
                if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                    log.warning("outbox full: message dropped", extra={
                        "outbox": self.name, "dropped": self.dropped})  # fmt: skip

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout_s: float = 5.0) -> None:
        """Publish what is queued (for up to ``timeout_s``), then stop."""
        self._closing.set()
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout_s)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._send(batch)  # type: ignore[arg-type]
                    return
                batch.append(item)
            self._send(batch)  # type: ignore[arg-type]

    def _send(self, batch: list[T]) -> None:
        wait = self.retry_s
        while True:
            try:
                self.publish(batch)
            except Exception:
                self.failures += 1
                log.warning("outbox publish failed", exc_info=True, extra={"outbox": self.name})
                if self._closing.is_set():
                    self.dropped += len(batch)
                    return
                time.sleep(wait)
                wait = min(wait * 2, 5.0)
                continue
            self.published += len(batch)
            return


class OutboxCollector(Collector):
    """An outbox's counts as Prometheus metrics."""

    def __init__(self, outbox: Outbox[Any]) -> None:
        self.outbox = outbox

    def collect(self) -> Iterator[Metric]:
        labels = {"outbox": self.outbox.name}
        for name, value, what in (
            ("published", self.outbox.published, "Messages published."),
            ("dropped", self.outbox.dropped, "Messages dropped: the queue was full."),
            ("failures", self.outbox.failures, "Failed publish attempts (retried)."),
        ):
            family = CounterMetricFamily(f"loopline_outbox_{name}", what, labels=["outbox"])
            family.add_metric(list(labels.values()), value)
            yield family
        gauge = GaugeMetricFamily("loopline_outbox_pending", "Queued.", labels=["outbox"])
        gauge.add_metric(list(labels.values()), self.outbox.pending)
        yield gauge
