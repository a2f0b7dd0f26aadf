"""Erasing one data subject's data from every store (GDPR art. 17), and the audit of it.

An application declares what identifies a subject (:class:`Subject`): the event field
that names one (a customer id) and the fields whose values in that subject's events are
erased with it (the card tokens and device ids the customer used, the request ids of
their transactions). :func:`find_identifiers` reads the subject's events to collect
those values; :func:`erase` hands the :class:`Identifiers` to every store
(:class:`Target`: the event log, dead letters, online and offline features, the
prediction log with its labels, reports), each of which deletes what it holds of them,
and writes an :class:`ErasureLog` line that says when, where and how much, with a keyed
hash of the subject id, never the id.

This module knows no store: a target is a name and a function, so importing it pulls in
no backend (and the event log may import :mod:`loopline.privacy` itself).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from loopline.exceptions import ConfigError
from loopline.files import write_private

if TYPE_CHECKING:
    from loopline.events.base import EventLog, Record

__all__ = [
    "ErasureLog",
    "ErasureReport",
    "Identifiers",
    "Subject",
    "Target",
    "dead_letters_target",
    "erase",
    "event_log_target",
    "find_identifiers",
    "offline_store_target",
    "online_store_target",
    "prediction_log_target",
    "redact_reports",
    "reports_target",
]

logger = logging.getLogger("loopline.privacy")

_json = msgspec.json.Decoder()
ERASED = b"[erased]"  # what a redacted report shows where an identifier was
TEXT_SUFFIXES = frozenset({".html", ".htm", ".json", ".md", ".txt", ".csv", ".svg"})


@dataclass(frozen=True, kw_only=True, slots=True)
class Subject:
    """What identifies a data subject in an application's events.

    Args:
        field: The event field that names the subject (``"customer_id"``).
        topics: The topics whose events name subjects (read to find the linked values).
        linked: Fields whose values in the subject's events are erased with it, wherever
            they appear: identifiers the subject used (a card token, a device id) and the
            ids of the subject's requests (a transaction id).
        key_separator: Entity keys joined from several identifiers with this separator
            (a card-and-device pair key) are the subject's when any part is.
        column: The prediction log's declared column that names the subject, where a
            service logs predictions without keeping their events (the embedded
            profile): the request ids and routing keys of its rows are linked too.
    """

    field: str
    topics: tuple[str, ...]
    linked: tuple[str, ...] = ()
    key_separator: str | None = None
    column: str | None = None

    def __post_init__(self) -> None:
        if not self.field or not self.topics:
            raise ConfigError(
                f"Subject needs a 'field' naming the subject and the 'topics' its events "
                f"are on. Got field={self.field!r}, topics={self.topics!r}."
            )

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field whose value can identify the subject."""
        return (self.field, *self.linked)


@dataclass(frozen=True, slots=True)
class Identifiers:
    """One subject's id and the linked values found in its events: what stores erase."""

    subject: Subject
    subject_id: str
    linked: frozenset[str] = frozenset()

    @property
    def values(self) -> frozenset[str]:
        return self.linked | {self.subject_id}

    def names_key(self, key: str) -> bool:
        """Whether an entity key or routing key is one of the values (or, with a
        ``key_separator``, has one as a part)."""
        values = self.values
        if key in values:
            return True
        sep = self.subject.key_separator
        return sep is not None and sep in key and any(p in values for p in key.split(sep))

    def names_event(self, event: Mapping[str, Any]) -> bool:
        """Whether a decoded event names the subject or carries a linked value in one of
        the declared fields."""
        if event.get(self.subject.field) == self.subject_id:
            return True
        return any(event.get(f) in self.linked for f in self.subject.linked)

    def names_bytes(self, data: bytes) -> bool:
        """Whether any value occurs in ``data`` (bytes that are not one JSON event)."""
        return any(v.encode() in data for v in self.values)

    def names_record(self, record: Record) -> bool:
        """Whether an event-log record is the subject's: by its key, else by its decoded
        event's declared fields, else (not a JSON object) by any value in its bytes."""
        return self.names_message(record.key, record.value)

    def names_message(self, key: bytes | None, value: bytes) -> bool:
        if key is not None and self.names_key(key.decode(errors="replace")):
            return True
        try:
            event = _json.decode(value)
        except msgspec.DecodeError:
            event = None
        if isinstance(event, dict):
            return self.names_event(event)
        return self.names_bytes(value)


def find_identifiers(
    subject: Subject, subject_id: str, log: EventLog, predictions: Any = None
) -> Identifiers:
    """Read the subject's topics on ``log`` for its events, and the rows of
    ``predictions`` (a prediction log) naming it in ``subject.column``; collect the
    linked values."""
    from loopline.events.base import TopicPartition
    from loopline.exceptions import TopicNotFoundError

    linked: set[str] = set()
    if predictions is not None and subject.column is not None:
        for request_id, routing_key in predictions.keys_of(subject.column, subject_id):
            linked |= {request_id, routing_key}
    for topic in subject.topics:
        try:
            partitions = log.partitions(topic)
        except TopicNotFoundError:  # this profile keeps no such topic
            continue
        for p in range(partitions):
            offset, end = 0, log.end_offset(TopicPartition(topic, p))
            while offset < end:
                batch = log.read(TopicPartition(topic, p), offset, max_records=5000)
                if not batch:
                    break
                for record in batch:
                    linked |= _linked_in(subject, subject_id, record.value)
                offset = batch[-1].offset + 1
    linked.discard(subject_id)
    return Identifiers(subject, subject_id, frozenset(linked))


def _linked_in(subject: Subject, subject_id: str, value: bytes) -> set[str]:
    try:
        event = _json.decode(value)
    except msgspec.DecodeError:
        return set()
    if not isinstance(event, dict) or event.get(subject.field) != subject_id:
        return set()
    return {str(event[f]) for f in subject.linked if event.get(f) not in (None, "")}


@dataclass(frozen=True, slots=True)
class Target:
    """One store to erase from: its name in the report and what erases there (returns
    how many records, rows, keys or files it removed or redacted). The functions below
    make the platform's."""

    name: str
    erase: Callable[[Identifiers], int]


class _ErasesRecords(Protocol):
    url: str

    def erase(self, matches: Callable[[Record], bool], *, topics: Sequence[str] = ()) -> int: ...


class _ErasesKeys(Protocol):
    def erase(self, matches: Callable[[str], bool]) -> int: ...


class _ErasesRows(Protocol):
    def erase(self, values: Collection[str]) -> int: ...


def event_log_target(log: EventLog, *, topics: Sequence[str] = ()) -> Target:
    """The records of ``topics`` (all when empty) that name the subject: its events and
    any keyed by, or carrying in a declared field, one of its linked values."""
    erasable = _erasable(log)
    return Target("event log", lambda ids: erasable.erase(ids.names_record, topics=topics))


def dead_letters_target(log: EventLog, topics: Sequence[str]) -> Target:
    """The dead letters of ``topics`` whose failed record names the subject (by key or
    declared field, or, for bytes that are not an event, by any value in them)."""
    from loopline.events.deadletter import DeadLetterQueue

    _erasable(log)
    queues = [DeadLetterQueue(log, t) for t in topics]
    return Target("dead letters", lambda ids: sum(q.erase(ids.names_message) for q in queues))


def online_store_target(store: object) -> Target:
    """The online store's state of every entity whose key is one of the values (or has
    one as a part): an embedded or Redis store."""
    keyed: _ErasesKeys = _has_erase(store, "an online store")
    return Target("online features", lambda ids: keyed.erase(ids.names_key))


def offline_store_target(root: Path, columns: Sequence[str]) -> Target:
    """The rows of the Parquet files under ``root`` whose ``columns`` hold a value."""
    from loopline.features.offline import erase_rows

    return Target("offline features", lambda ids: erase_rows(root, columns, ids.values))


def prediction_log_target(log: object) -> Target:
    """The predictions routed by, or requested as, one of the values, and their labels."""
    rows: _ErasesRows = _has_erase(log, "a prediction log")
    return Target("prediction log and labels", lambda ids: rows.erase(ids.values))


def reports_target(folders: Sequence[Path]) -> Target:
    """The reports under ``folders`` (see :func:`redact_reports`)."""
    return Target("reports", lambda ids: redact_reports(folders, ids))


def _erasable(log: EventLog) -> _ErasesRecords:
    if not callable(getattr(log, "erase", None)):
        raise ConfigError(
            f"The event log at {log.url} cannot delete records one by one. Erase on the "
            "embedded or Redis log; on Kafka see docs/privacy.md."
        )
    return log  # type: ignore[return-value]


def _has_erase(store: object, what: str) -> Any:
    if not callable(getattr(store, "erase", None)):
        raise ConfigError(f"{type(store).__name__} has no erase(): it cannot be {what} target.")
    return store


class ErasureReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one erasure did: the audit line, as written (no subject id in it)."""

    at_ms: int
    subject_hash: str  # HMAC-SHA256 of the subject id under the erasure log's key
    linked: int  # how many linked identifiers were erased with the subject
    counts: dict[str, int]  # per store: records, rows, keys or files removed or redacted
    seconds: float


class ErasureLog:
    """An append-only JSON-lines file of erasures, one :class:`ErasureReport` each.

    The subject appears only as an HMAC of its id under a key kept beside the log
    (``<path>.key``, mode 0600, made on first use): with the key one can answer "was this
    subject erased, and when?" by hashing the id again; without it the line names no one,
    and a plain hash would not do (ids are guessable, so a hash of one is reversible).

    Args:
        path: The log file; created with its folder when missing.
        key: The hashing key (default: read from, or made in, ``<path>.key``).
    """

    def __init__(self, path: str | os.PathLike[str], *, key: bytes | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._key = key if key is not None else _key_beside(self.path)

    def subject_hash(self, subject_id: str) -> str:
        return hmac.new(self._key, subject_id.encode(), hashlib.sha256).hexdigest()

    def append(self, report: ErasureReport) -> None:
        with self.path.open("ab") as f:
            f.write(msgspec.json.encode(report) + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def reports(self) -> list[ErasureReport]:
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().splitlines()
        return [msgspec.json.decode(line, type=ErasureReport) for line in lines if line]


def _key_beside(path: Path) -> bytes:
    key_path = path.with_name(path.name + ".key")
    if not key_path.exists():
        write_private(key_path, secrets.token_hex(32), overwrite=False)
    return bytes.fromhex(key_path.read_text().strip())


def erase(
    subject_id: str,
    *,
    subject: Subject,
    log: EventLog,
    targets: Sequence[Target],
    audit: ErasureLog,
    predictions: Any = None,
) -> ErasureReport:
    """Erase ``subject_id``'s data from every target; log and return what was done.

    The linked values are found first (in ``log``'s subject topics and, with a subject
    column, in ``predictions``), then each target
    erases in the order given: put the event log last, so that an erasure that fails
    half-way can be run again and still find the linked values.
    """
    if not subject_id:
        raise ConfigError("erase() needs a non-empty subject id.")
    started = time.perf_counter()
    ids = find_identifiers(subject, subject_id, log, predictions)
    counts: dict[str, int] = {}
    for target in targets:
        counts[target.name] = target.erase(ids)
    report = ErasureReport(
        at_ms=time.time_ns() // 1_000_000,
        subject_hash=audit.subject_hash(subject_id),
        linked=len(ids.linked),
        counts=counts,
        seconds=round(time.perf_counter() - started, 3),
    )
    audit.append(report)
    logger.info(
        "erased subject %s… from %d stores: %s",
        report.subject_hash[:12],
        len(counts),
        counts,
        extra={"erasure": msgspec.to_builtins(report)},
    )
    return report


def redact_reports(
    folders: Sequence[Path], ids: Identifiers, *, suffixes: Collection[str] = TEXT_SUFFIXES
) -> int:
    """Redact the subject from every report under ``folders``; return how many files.

    A report (a file with one of ``suffixes``: HTML, JSON, Markdown, text, CSV, SVG)
    that mentions an identifier is rewritten with each mention replaced by
    ``[erased]``: it stays readable and keeps its figures, which are aggregates.
    Redacting instead of deleting keeps a training report's evidence for the model it
    describes. Other files (databases, models, images) are left to their own stores.
    The new file is written beside the old one and renamed over it, so a reader never
    sees half a report.
    """
    needles = sorted((v.encode() for v in ids.values), key=len, reverse=True)
    changed = 0
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.exists() else []:
            if not path.is_file() or path.suffix.lower() not in suffixes:
                continue
            data = path.read_bytes()
            if not any(n in data for n in needles):
                continue
            for needle in needles:
                data = data.replace(needle, ERASED)
            tmp = path.with_name(path.name + ".erasing")
            tmp.write_bytes(data)
            tmp.replace(path)
            changed += 1
    return changed
