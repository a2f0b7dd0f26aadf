"""The dead-letter path: records that fail to decode go to ``<topic>.dlq`` with the reason.

Nothing is dropped silently. A dead letter keeps the original bytes and key, where they
came from (topic, partition, offset) and why they failed, so that a fixed consumer can
replay them. The one exception to "original": card numbers. A producer that sends a raw
card number (PAN) where a token belongs would otherwise have it stored in clear on the
dead-letter topic (PCI DSS 3.3-3.5), so every Luhn-valid 13-19 digit run in the value,
the key and the reason is masked before the letter is stored
(:func:`loopline.privacy.redact_pans`), and the letter says how many were
(``masked_pans``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import msgspec

from loopline.events.base import Erasable, EventLog, Message, Record
from loopline.events.schema import Codec, Event
from loopline.exceptions import ConfigError, SchemaError
from loopline.privacy.scan import redact_pans

E = TypeVar("E", bound=Event)


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """One record that could not be processed, as stored on the dead-letter topic."""

    source_topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    reason: str
    error: str
    failed_at_ms: int
    masked_pans: int = 0  # card-number runs masked in value, key and reason before storing


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return f"{topic}.dlq"


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DeadLetter)


class DeadLetterQueue:
    """Writes failed records of one topic to its dead-letter topic.

    Args:
        log: The event log holding both topics.
        topic: The source topic; the dead letters go to ``<topic>.dlq``.
    """

    def __init__(self, log: EventLog, topic: str) -> None:
        self.log = log
        self.topic = dead_letter_topic(topic)
        log.create_topic(self.topic, partitions=1)

    def send_many(self, failures: Sequence[tuple[Record, Exception]]) -> None:
        """Append one dead letter per ``(record, error)``; returns once they are durable."""
        if not failures:
            return
        now = int(time.time() * 1000)
        self.log.append_many(self.topic, [_message(r, e, now) for r, e in failures])

    @staticmethod
    def parse(record: Record) -> DeadLetter:
        """The dead letter stored in ``record`` (a record of a ``.dlq`` topic)."""
        return _decoder.decode(record.value)

    def erase(self, matches: Callable[[bytes | None, bytes], bool]) -> int:
        """Delete the dead letters whose failed record ``matches`` (its key and bytes);
        return how many. A letter's bytes are base64 in its JSON, so a scan of the
        topic's raw bytes would miss what only a parse finds."""

        def letter_matches(record: Record) -> bool:
            letter = self.parse(record)
            return matches(letter.key, letter.value) or matches(None, letter.reason.encode())

        return self._log().erase(letter_matches, topics=[self.topic])

    def expire(self, older_than_ms: int, *, limit: int = 10_000) -> int:
        """Delete up to ``limit`` dead letters that failed before ``older_than_ms`` (a
        letter's record time is when it failed); return how many."""
        return self._log().expire(older_than_ms, topics=[self.topic], limit=limit)

    def _log(self) -> Erasable:
        if not isinstance(self.log, Erasable):
            raise ConfigError(
                f"The event log at {self.log.url} cannot delete records; its dead letters "
                "are kept for the topic's retention (see docs/privacy.md)."
            )
        return self.log


def _message(record: Record, error: Exception, now_ms: int) -> Message:
    """The dead letter of ``record``, card numbers masked (a SchemaError's reason quotes
    the value it refused, so the reason is masked too)."""
    value, in_value = redact_pans(record.value)
    key, in_key = redact_pans(record.key) if record.key is not None else (None, 0)
    reason, in_reason = redact_pans(str(error).encode())
    letter = DeadLetter(
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp_ms,
        key=key,
        value=value,
        reason=reason.decode(errors="replace"),
        error=type(error).__name__,
        failed_at_ms=now_ms,
        masked_pans=in_value + in_key + in_reason,
    )
    # the record time is when it failed: retention counts from there, not the event time
    return Message(_encoder.encode(letter), key=key, timestamp_ms=now_ms)


def decode_or_dead_letter(
    records: Sequence[Record], codec: Codec[E], dlq: DeadLetterQueue
) -> list[tuple[Record, E]]:
    """Decode ``records`` with ``codec``; send the ones that fail to ``dlq``.

    Returns the records that decoded, each with its event, in their original order.
    The dead letters are durable before this returns, so committing the consumer's
    offsets afterwards loses nothing.
    """
    decoded: list[tuple[Record, E]] = []
    failed: list[tuple[Record, Exception]] = []
    for record in records:
        try:
            decoded.append((record, codec.decode(record.value)))
        except SchemaError as exc:
            failed.append((record, exc))
    dlq.send_many(failed)
    return decoded
