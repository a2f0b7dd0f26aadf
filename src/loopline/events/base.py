"""The event-log contract: records, messages and the two protocols every backend implements.

An :class:`EventLog` holds topics split into partitions. A record's key picks its
partition through a stable hash (:func:`loopline.events.partition_for`), so every
backend places the same key in the same partition and per-key order holds. Offsets
count from 0 within a partition. A :class:`Consumer` belongs to a consumer group: the
group's live members share the partitions of the topics they subscribe to, and each
partition's committed offset is where a member that takes it over resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

OffsetReset = Literal["earliest", "latest"]


@dataclass(frozen=True, slots=True)
class Message:
    """What a producer appends: a value, an optional key and an optional event time.

    Attributes:
        value: The payload bytes.
        key: Picks the partition; records with equal keys keep their order.
            ``None`` spreads records round-robin.
        timestamp_ms: Event time in milliseconds since the epoch; the append time
            when ``None``.
    """

    value: bytes
    key: bytes | None = None
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A record read back from the log, with its position."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True, order=True)
class TopicPartition:
    """One partition of one topic."""

    topic: str
    partition: int


@runtime_checkable
class Consumer(Protocol):
    """A member of a consumer group, reading the partitions the group gives it."""

    def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        """Return up to ``max_records`` records, waiting at most ``timeout_s`` for the first.

        Records of one partition come in offset order. Polling also keeps the member
        alive in its group and takes up partitions when the group's members change.
        """
        ...

    def commit(self) -> None:
        """Commit the position after every record polled so far (at-least-once)."""
        ...

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Continue reading ``tp`` at ``offset`` (see :meth:`EventLog.offset_for_time`)."""
        ...

    def assignment(self) -> list[TopicPartition]:
        """The partitions this member owns now, sorted."""
        ...

    def close(self) -> None:
        """Leave the group; uncommitted records go to the next owner."""
        ...


@runtime_checkable
class EventLog(Protocol):
    """A partitioned, durable, append-only log of records."""

    url: str

    def create_topic(self, topic: str, *, partitions: int = 1) -> None:
        """Create ``topic``; a no-op when it exists with the same partition count."""
        ...

    def partitions(self, topic: str) -> int:
        """The number of partitions of ``topic``; :class:`TopicNotFoundError` if none."""
        ...

    def append_many(self, topic: str, messages: Sequence[Message]) -> list[tuple[int, int]]:
        """Append ``messages`` durably; return each one's ``(partition, offset)``."""
        ...

    def read(self, tp: TopicPartition, offset: int, *, max_records: int = 1000) -> list[Record]:
        """Read up to ``max_records`` records of ``tp`` from ``offset`` on, without a group."""
        ...

    def end_offset(self, tp: TopicPartition) -> int:
        """The offset the next record appended to ``tp`` will get."""
        ...

    def offset_for_time(self, tp: TopicPartition, timestamp_ms: int) -> int:
        """The first offset whose record time is at or after ``timestamp_ms``.

        Like Kafka's time index, "record time" is the running maximum of record
        timestamps, so the answer is monotone even when event times are not. Returns
        :meth:`end_offset` when no record is that recent.
        """
        ...

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        offset_reset: OffsetReset = "earliest",
        session_timeout_s: float = 10.0,
    ) -> Consumer:
        """Join consumer ``group`` subscribed to ``topics``."""
        ...

    def close(self) -> None:
        """Release connections; appended records stay."""
        ...


@runtime_checkable
class Erasable(Protocol):
    """An event log that can delete records: erasure (GDPR art. 17) and retention.

    The embedded and Redis logs delete records one by one, keeping every other record's
    offset. Kafka cannot (a topic is an append-only sequence of segments), so
    ``KafkaLog`` sets a retention on the topics and erases by crypto-shredding instead:
    see docs/decisions/0008-erasure-and-retention.md.
    """

    def erase(self, matches: Callable[[Record], bool], *, topics: Sequence[str] = ()) -> int:
        """Delete the records of ``topics`` (every topic when empty) that ``matches``;
        return how many."""
        ...

    def expire(self, older_than_ms: int, *, topics: Sequence[str] = (), limit: int = 10_000) -> int:
        """Delete up to ``limit`` records older than ``older_than_ms`` (by the running
        maximum of record times, so always a prefix of a partition); return how many."""
        ...
