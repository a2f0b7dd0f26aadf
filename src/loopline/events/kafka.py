"""The Kafka backend, on confluent-kafka (``pip install loopline[kafka]``).

Partitions are chosen by :func:`loopline.events.partition_for` (librdkafka's
``consistent`` hash), so the same key lands in the same partition as on the other
backends. Appends wait for ``acks=all``. Group membership, assignment and committed
offsets are the broker's own (classic group protocol).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_END,
    KafkaError,
    KafkaException,
    Producer,
)
from confluent_kafka import (
    Consumer as _KafkaConsumer,
)
from confluent_kafka import TopicPartition as _KafkaTP
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from loopline.events.base import Consumer, Message, OffsetReset, Record, TopicPartition
from loopline.events.partitioning import partition_for
from loopline.events.topics import (
    check_partition,
    check_same_layout,
    check_topic,
    topic_not_found,
)
from loopline.exceptions import (
    BackendUnavailableError,
    CommitError,
    EventLogError,
    TopicNotFoundError,
)

_logger = logging.getLogger(__name__)


class KafkaLog:
    """An event log on a Kafka-protocol broker.

    Args:
        bootstrap: ``host:port[,host:port...]`` of the brokers.
        timeout_s: Deadline for every broker round trip; an unreachable broker raises
            :class:`BackendUnavailableError` naming the address after this long.
        config: Extra librdkafka settings for producer, consumers and admin client.
    """

    def __init__(
        self, bootstrap: str, *, timeout_s: float = 10.0, config: dict[str, Any] | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.url = f"kafka://{bootstrap}"
        self.timeout_s = timeout_s
        self._base: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "logger": _logger,
            "socket.connection.setup.timeout.ms": int(timeout_s * 1000),
            **(config or {}),
        }
        self._admin = AdminClient(self._base)
        self._partitions: dict[str, int] = {}
        self._round_robin: dict[str, int] = {}
        self._topic_metadata()  # fail fast when the broker is unreachable
        self._producer = Producer(
            {
                **self._base,
                "acks": "all",
                "linger.ms": 5,
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 1_000_000,
                "message.timeout.ms": int(timeout_s * 1000),
            }
        )
        self._reader: Any = None

    def _unavailable(self, exc: BaseException) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"Kafka broker at {self.bootstrap} did not answer within {self.timeout_s:g}s "
            f"({exc}). Check that it runs and that the address is right."
        )

    def _topic_metadata(self) -> dict[str, Any]:
        try:
            return dict(self._admin.list_topics(timeout=self.timeout_s).topics)
        except KafkaException as exc:
            raise self._unavailable(exc) from None

    def create_topic(self, topic: str, *, partitions: int = 1) -> None:
        check_topic(topic, partitions=partitions)
        # Keep records forever: the log is the history that backfills and replays read.
        new = NewTopic(
            topic,
            num_partitions=partitions,
            replication_factor=1,
            config={"retention.ms": "-1", "retention.bytes": "-1"},
        )
        future = self._admin.create_topics([new], operation_timeout=self.timeout_s)[topic]
        try:
            future.result(timeout=self.timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise EventLogError(
                    f"Creating topic {topic!r} on {self.url} failed: {exc}"
                ) from None
        except TimeoutError as exc:
            raise self._unavailable(exc) from None
        existing = self.partitions(topic)
        check_same_layout(topic, self.url, existing, partitions)

    def partitions(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            meta = self._topic_metadata().get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise topic_not_found(topic, self.url)
            count = self._partitions[topic] = len(meta.partitions)
        return count

    def append_many(self, topic: str, messages: Sequence[Message]) -> list[tuple[int, int]]:
        partitions = self.partitions(topic)
        positions: list[tuple[int, int]] = [(-1, -1)] * len(messages)
        errors: list[str] = []
        start = self._round_robin.get(topic, 0)
        self._round_robin[topic] = start + len(messages)
        produce, poll = self._producer.produce, self._producer.poll

        def delivered(index: int) -> Any:
            def callback(err: Any, msg: Any) -> None:
                if err is not None:
                    errors.append(str(err))
                else:
                    positions[index] = (msg.partition(), msg.offset())

            return callback

        for i, m in enumerate(messages):
            p = partition_for(m.key, partitions) if m.key is not None else (start + i) % partitions
            ts = 0 if m.timestamp_ms is None else m.timestamp_ms
            while True:
                try:
                    produce(
                        topic, m.value, m.key, partition=p, timestamp=ts, on_delivery=delivered(i)
                    )
                    break
                except BufferError:
                    poll(0.01)
        if self._producer.flush(self.timeout_s) > 0:
            raise self._unavailable(TimeoutError("records still unacknowledged"))
        if errors:
            raise EventLogError(
                f"{len(errors)} appends to {topic!r} on {self.url} failed: {errors[0]}"
            )
        return positions

    def _reader_consumer(self) -> Any:
        if self._reader is None:
            self._reader = _KafkaConsumer(
                {
                    **self._base,
                    "group.id": f"loopline-reader-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": False,
                }
            )
        return self._reader

    def read(self, tp: TopicPartition, offset: int, *, max_records: int = 1000) -> list[Record]:
        low, end = self._watermarks(tp)
        offset = max(offset, low)  # below it: deleted by retention (expire)
        want = min(max_records, end - offset)
        if want <= 0:
            return []
        reader = self._reader_consumer()
        reader.assign([_KafkaTP(tp.topic, tp.partition, offset)])
        out: list[Record] = []
        try:
            while len(out) < want:
                batch = reader.consume(num_messages=want - len(out), timeout=self.timeout_s)
                if not batch:
                    raise self._unavailable(TimeoutError(f"reading {tp.topic}[{tp.partition}]"))
                out.extend(_records(batch))
        finally:
            # an assigned partition is fetched on and on in the background; at the end of
            # a partition a broker that answers empty fetches at once (noida-db) spins:
            # one idle reader held it at ~40 % of a core
            reader.unassign()
        return out

    def end_offset(self, tp: TopicPartition) -> int:
        return self._watermarks(tp)[1]

    def _watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        """The partition's first kept offset and its end offset."""
        self._check_partition(tp)
        try:
            low, high = self._reader_consumer().get_watermark_offsets(
                _KafkaTP(tp.topic, tp.partition), timeout=self.timeout_s
            )
        except KafkaException as exc:
            raise self._unavailable(exc) from None
        return int(low), int(high)

    def expire(self, older_than_ms: int, *, topics: Sequence[str] = (), limit: int = 10_000) -> int:
        """Delete up to ``limit`` records of ``topics`` (every topic but the broker's
        internal ones when empty) older than ``older_than_ms``; return how many.

        Each partition loses a prefix, up to the first offset whose record time (the
        running maximum, the broker's time index) is at or after the cutoff, with the
        admin API's DeleteRecords: the broker moves the partition's start past it and
        frees the segments behind. Offsets of the records kept do not change; a consumer
        whose position was deleted resumes at the new start (``earliest``). Topics keep
        ``retention.ms=-1``: retention is this call, bounded per pass, like the other
        stores'. Counts are offsets (a transaction marker counts as a record).
        """
        names = list(topics) or [t for t in self._topic_metadata() if not t.startswith("__")]
        cuts: list[Any] = []
        expired = 0
        for topic in names:
            try:
                partitions = self.partitions(topic)
            except TopicNotFoundError:  # this profile keeps no such topic
                continue
            for p in range(partitions):
                tp = TopicPartition(topic, p)
                low, _ = self._watermarks(tp)
                cut = min(self.offset_for_time(tp, older_than_ms), low + limit - expired)
                if cut > low:
                    cuts.append(_KafkaTP(topic, p, cut))
                    expired += cut - low
        if cuts:
            self._delete_records(cuts)
        return expired

    def _delete_records(self, cuts: list[Any]) -> None:
        futures = self._admin.delete_records(
            cuts, request_timeout=self.timeout_s, operation_timeout=self.timeout_s
        )
        for tp, future in futures.items():
            try:
                future.result(timeout=self.timeout_s)
            except KafkaException as exc:
                raise EventLogError(
                    f"Deleting records of {tp.topic}[{tp.partition}] before offset {tp.offset} "
                    f"on {self.url} failed: {exc}"
                ) from None
            except TimeoutError as exc:
                raise self._unavailable(exc) from None

    def offset_for_time(self, tp: TopicPartition, timestamp_ms: int) -> int:
        self._check_partition(tp)
        try:
            (found,) = self._reader_consumer().offsets_for_times(
                [_KafkaTP(tp.topic, tp.partition, timestamp_ms)], timeout=self.timeout_s
            )
        except KafkaException as exc:
            raise self._unavailable(exc) from None
        return self.end_offset(tp) if found.offset in (-1, OFFSET_END) else int(found.offset)

    def _check_partition(self, tp: TopicPartition) -> None:
        partitions = self.partitions(tp.topic)
        check_partition(tp.topic, tp.partition, partitions)

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        offset_reset: OffsetReset = "earliest",
        session_timeout_s: float = 10.0,
    ) -> Consumer:
        for topic in topics:
            self.partitions(topic)
        config = {
            **self._base,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": offset_reset,
            "session.timeout.ms": int(session_timeout_s * 1000),
            "heartbeat.interval.ms": max(100, int(session_timeout_s * 200)),
            # A rebalance waits this long for members to rejoin: bound it near the
            # session timeout, so that a crashed member's partitions move on quickly.
            "max.poll.interval.ms": int(session_timeout_s * 2000),
            "enable.partition.eof": False,
        }
        return KafkaConsumer(config, list(topics), timeout_s=self.timeout_s, url=self.url)

    def close(self) -> None:
        self._producer.flush(self.timeout_s)
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _records(batch: list[Any]) -> list[Record]:
    out = []
    for msg in batch:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise TopicNotFoundError(f"Topic {msg.topic()!r} does not exist: {err}")
            raise EventLogError(f"Kafka consume failed: {err}")
        out.append(
            Record(
                msg.topic(),
                msg.partition(),
                msg.offset(),
                msg.timestamp()[1],
                msg.key(),
                msg.value(),
            )
        )
    return out


class KafkaConsumer:
    """A Kafka consumer-group member with manual, synchronous commits."""

    def __init__(
        self, config: dict[str, Any], topics: list[str], *, timeout_s: float, url: str
    ) -> None:
        self._consumer = _KafkaConsumer(config)
        self._timeout_s = timeout_s
        self._url = url
        self._positions: dict[TopicPartition, int] = {}
        self._consumer.subscribe(topics, on_revoke=self._on_revoke)

    def _on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        for p in partitions:
            self._positions.pop(TopicPartition(p.topic, p.partition), None)

    def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        records = _records(self._consumer.consume(num_messages=max_records, timeout=timeout_s))
        for r in records:
            self._positions[TopicPartition(r.topic, r.partition)] = r.offset + 1
        return records

    def commit(self) -> None:
        if not self._positions:
            return
        offsets = [_KafkaTP(tp.topic, tp.partition, o) for tp, o in sorted(self._positions.items())]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise CommitError(f"Committing offsets on {self._url} failed: {exc}") from None
        self._positions.clear()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self.assignment():
            raise EventLogError(
                f"Cannot seek {tp.topic}[{tp.partition}]: this member does not own it. "
                "Poll first, and seek within assignment()."
            )
        self._consumer.seek(_KafkaTP(tp.topic, tp.partition, offset))
        self._positions[tp] = offset

    def assignment(self) -> list[TopicPartition]:
        return sorted(TopicPartition(p.topic, p.partition) for p in self._consumer.assignment())

    def close(self) -> None:
        self._consumer.close()
