"""Crypto-shredding: erasing a subject from an append-only event log by deleting one key.

A Kafka topic cannot lose one record, and compacting it would destroy the history that
backfills and replays read. So the values of the subject's events are encrypted at append
time under a per-subject data key (:class:`KeyStore`), and erasing the subject deletes the
key: every copy of its records (replicas, backups, mirrors) becomes unreadable at once.

:class:`ShreddedLog` wraps any :class:`~loopline.events.EventLog` and does it
transparently for the declared topics. On append, a JSON value naming a subject (in
:attr:`Subject.field`) is stored as::

    b"LLS1" + key_id (16 bytes) + nonce (12) + AES-256-GCM(framed key and value, aad=topic)

and its message key, if any, is replaced by ``HMAC-SHA256(subject key, key)[:16]`` in
hex: stable while the key exists, so records of one key keep one partition and their
order, and unlinkable once it is shredded. The original key travels inside the
ciphertext and comes back on read. Values naming no subject pass unchanged. On
:meth:`ShreddedLog.read` and on its consumers' polls, values are decrypted; a record whose
key was shredded is left out of what is returned (offsets still advance past it, so
consumers skip it: no dead letter, nothing to retry).

The two sub-keys (encryption, key hashing) are derived from the stored 32-byte key with
HMAC-SHA256, so one secret never serves two algorithms. A nonce is random per record:
safe for 2**32 records per subject.

Cost, measured on this project's 2-core machine against the same log unwrapped (200-byte
JSON values, batches of 5,000, 1,000 subjects, keys cached): +5 µs per record appended
and +3.7 µs per record read, on the embedded log (2.5 and 1.5 µs unwrapped) and on Kafka
(noida-db; 2.2 and 2.9 µs unwrapped) alike, with either key store. A subject's first
record costs one key made and stored: about 50 µs (SQLite) or 70 µs (local PostgreSQL).

Caches: each :class:`KeyStore` keeps up to ``cache_size`` keys (LRU), each for at most
``cache_ttl_s``. :meth:`KeyStore.erase` drops the key from its own cache at once; every
other process's cache must be bounded in time, so a shredded key stops decrypting (and
encrypting) everywhere within ``cache_ttl_s`` (60 s by default). Records another
process appends in that window are under the deleted key: erased with the rest.
"""

from __future__ import annotations

import base64
import hmac
import os
import struct
from collections.abc import Sequence

import msgspec

from loopline.events.base import Consumer, EventLog, Message, OffsetReset, Record, TopicPartition
from loopline.exceptions import ConfigError, EventLogError
from loopline.privacy.erasure import Subject, Target
from loopline.privacy.keys import KEY_ID_BYTES, KeyStore, _DataKey

__all__ = ["ShreddedLog", "shredded_log_target"]

MAGIC = b"LLS1"
NONCE_BYTES = 12
_BODY = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES  # where the ciphertext starts
_KEY_LEN = struct.Struct(">i")  # the original message key's length, -1 for none
_json = msgspec.json.Decoder()


class ShreddedLog:
    """An event log whose ``topics`` hold each subject's values encrypted under the
    subject's key (see the module docstring); every other topic, and every other
    operation, is the wrapped log's.

    Args:
        log: The wrapped event log (Kafka, embedded, Redis); :attr:`log` reads it raw.
        keys: The subjects' keys.
        subject: What names a subject in an event (:attr:`Subject.field`).
        topics: The topics to encrypt (default: ``subject.topics``).

    Erase a subject with :func:`shredded_log_target`; pass this log (not the wrapped
    one) to :func:`loopline.privacy.erase`, which reads the subject's events to find the
    linked identifiers.
    """

    def __init__(
        self,
        log: EventLog,
        *,
        keys: KeyStore,
        subject: Subject,
        topics: Sequence[str] = (),
        owns_keys: bool = False,
    ) -> None:
        self.log = log
        self.keys = keys
        self.owns_keys = owns_keys  # close the key store with the log
        self.subject = subject
        self.topics = topics
        self.url = log.url
        named = topics or subject.topics
        # and their dead letters (``<topic>.dlq``), under the key of the subject whose
        # record each holds, where it can still be read
        self._shredded = frozenset(named) | {f"{t}.dlq" for t in named}

    def create_topic(self, topic: str, *, partitions: int = 1) -> None:
        self.log.create_topic(topic, partitions=partitions)

    def partitions(self, topic: str) -> int:
        return self.log.partitions(topic)

    def append_many(self, topic: str, messages: Sequence[Message]) -> list[tuple[int, int]]:
        if topic in self._shredded:
            messages = self._encrypt(topic, messages)
        return self.log.append_many(topic, messages)

    def read(self, tp: TopicPartition, offset: int, *, max_records: int = 1000) -> list[Record]:
        """Records from ``offset`` on, decrypted; shredded ones left out. Empty only at
        the end (a batch of nothing but shredded records is read past)."""
        while True:
            batch = self.log.read(tp, offset, max_records=max_records)
            if not batch or tp.topic not in self._shredded:
                return batch
            records = self._decrypt(batch)
            if records:
                return records
            offset = batch[-1].offset + 1

    def end_offset(self, tp: TopicPartition) -> int:
        return self.log.end_offset(tp)

    def offset_for_time(self, tp: TopicPartition, timestamp_ms: int) -> int:
        return self.log.offset_for_time(tp, timestamp_ms)

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        offset_reset: OffsetReset = "earliest",
        session_timeout_s: float = 10.0,
    ) -> Consumer:
        inner = self.log.consumer(
            group, topics, offset_reset=offset_reset, session_timeout_s=session_timeout_s
        )
        return _ShreddedConsumer(inner, self)

    def expire(self, older_than_ms: int, *, topics: Sequence[str] = (), limit: int = 10_000) -> int:
        """The wrapped log's retention (:class:`loopline.privacy.RetentionJob`)."""
        expire = getattr(self.log, "expire", None)
        if not callable(expire):
            raise ConfigError(f"The event log at {self.url} has no retention (expire()).")
        return int(expire(older_than_ms, topics=topics, limit=limit))

    def close(self) -> None:
        """Close the wrapped log, and the key store if it is this log's own."""
        self.log.close()
        if self.owns_keys:
            self.keys.close()

    def _subject_of(self, value: bytes) -> str | None:
        try:
            event = _json.decode(value)
        except msgspec.DecodeError:
            return None
        if not isinstance(event, dict):
            return None
        subject = event.get(self.subject.field)
        if subject is None and "source_topic" in event and isinstance(event.get("value"), str):
            return self._subject_of(_dead_letter_value(event["value"]))
        if isinstance(subject, bool) or not isinstance(subject, str | int) or subject == "":
            return None
        return str(subject)

    def _encrypt(self, topic: str, messages: Sequence[Message]) -> list[Message]:
        subjects = [self._subject_of(m.value) for m in messages]
        keys = self.keys._keys_for({s for s in subjects if s is not None})
        aad = topic.encode()
        out: list[Message] = []
        for m, s in zip(messages, subjects, strict=True):
            if s is None:
                out.append(m)
                continue
            k = keys[s]
            framed = _KEY_LEN.pack(-1 if m.key is None else len(m.key)) + (m.key or b"") + m.value
            nonce = os.urandom(NONCE_BYTES)
            value = MAGIC + k.key_id + nonce + k.aead.encrypt(nonce, framed, aad)
            key = None if m.key is None else hmac.digest(k.mac_key, m.key, "sha256")[:16].hex()
            out.append(Message(value, None if key is None else key.encode(), m.timestamp_ms))
        return out

    def _decrypt(self, records: Sequence[Record]) -> list[Record]:
        sealed = [r.topic in self._shredded and r.value.startswith(MAGIC) for r in records]
        key_ids = {
            r.value[len(MAGIC) : _BODY - NONCE_BYTES]
            for r, s in zip(records, sealed, strict=True)
            if s
        }
        keys = self.keys._keys_by_id(key_ids) if key_ids else {}
        out: list[Record] = []
        for r, is_sealed in zip(records, sealed, strict=True):
            if not is_sealed:
                out.append(r)
                continue
            k = keys[r.value[len(MAGIC) : _BODY - NONCE_BYTES]]
            if k is not None:  # None: the subject was erased, the record is dropped
                out.append(_opened(r, k))
        return out


def _opened(record: Record, data_key: _DataKey) -> Record:
    from cryptography.exceptions import InvalidTag

    v = record.value
    try:
        framed = data_key.aead.decrypt(
            v[_BODY - NONCE_BYTES : _BODY], v[_BODY:], record.topic.encode()
        )
    except InvalidTag:
        raise EventLogError(
            f"Record {record.topic}[{record.partition}]@{record.offset} does not decrypt under "
            "its subject's key: it was altered, or copied from another topic."
        ) from None
    (n,) = _KEY_LEN.unpack_from(framed)
    start = _KEY_LEN.size + max(n, 0)
    key = None if n < 0 else framed[_KEY_LEN.size : start]
    return Record(
        record.topic, record.partition, record.offset, record.timestamp_ms, key, framed[start:]
    )


class _ShreddedConsumer:
    """A consumer of a :class:`ShreddedLog`: polls decrypt, shredded records are
    skipped (the wrapped consumer's position has moved past them)."""

    def __init__(self, consumer: Consumer, log: ShreddedLog) -> None:
        self._consumer = consumer
        self._log = log

    def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        records = self._consumer.poll(max_records=max_records, timeout_s=timeout_s)
        return self._log._decrypt(records) if records else records

    def commit(self) -> None:
        self._consumer.commit()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._consumer.seek(tp, offset)

    def assignment(self) -> list[TopicPartition]:
        return self._consumer.assignment()

    def close(self) -> None:
        self._consumer.close()


def _dead_letter_value(encoded: str) -> bytes:
    """The record a dead letter keeps (its bytes, base64 in the letter's JSON)."""
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        return b""


def shredded_log_target(log: ShreddedLog) -> Target:
    """Erasure on a :class:`ShreddedLog`: deletes the subject's key (1 if it had one),
    which leaves its records in the log, unreadable."""
    return Target("event log keys", lambda ids: log.keys.erase(ids.subject_id))
