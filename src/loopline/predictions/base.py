"""The prediction log's contract: one generic row per prediction, the columns an
application adds, the labels that arrive later, and the queries over both.

A row holds what every application has (the request id and its routing key, the model
version and arm that answered, the inputs and outputs as JSON, the time) plus the
columns the application declares (:class:`Column`: e.g. a decision, kept as a column to
count and segment by). Labels are joined by request id: one value per
``(request_id, subject)``, the subject naming an item (graded relevance), a class (a
reviewer's verdict) or nothing (a binary outcome).

Backends: :class:`~loopline.predictions.sqlite.SqliteLog` (the embedded default) and
:class:`~loopline.predictions.postgres.PostgresLog` (scale-out). Both group-commit
writes (:mod:`loopline.predictions.commit`) and answer the same queries, so the
feedback loop never needs to know which one it reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from loopline.exceptions import ConfigError

SqlType = Literal["TEXT", "REAL", "INTEGER"]
Keep = Literal["max", "latest", "first"]
GENERIC = (
    "idempotency_key", "request_id", "payload_sha256", "decided_ms", "routing_key",
    "model_version", "arm", "inputs", "outputs", "shadow_model", "shadow_outputs", "response",
)  # fmt: skip
SEGMENTS = ("model_version", "arm")  # generic columns a query may segment by
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Column:
    """A column an application adds to its prediction rows (``index``: queried often)."""

    name: str
    type: SqlType = "TEXT"
    index: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name in GENERIC:
            raise ConfigError(
                f"Column name {self.name!r} must be lower_snake_case (up to 63 characters) "
                f"and not one of the generic columns {list(GENERIC)}."
            )
        if self.type not in ("TEXT", "REAL", "INTEGER"):
            raise ConfigError(f"Column {self.name!r}: type must be TEXT, REAL or INTEGER.")


@dataclass(frozen=True, slots=True)
class Row:
    """One prediction as logged. ``inputs``, ``outputs`` and ``shadow_outputs`` are JSON;
    ``response`` is the answer as sent (returned again on an idempotent retry);
    ``columns`` holds the declared columns' values."""

    key: str  # idempotency key: the request id, or the caller's Idempotency-Key
    request_id: str
    fingerprint: str  # SHA-256 of the request: a reused key with another request is refused
    decided_ms: int
    routing_key: str
    model_version: str
    arm: str
    inputs: bytes
    outputs: bytes
    response: bytes
    shadow_model: str | None = None
    shadow_outputs: bytes | None = None  # None where the shadow model failed
    columns: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stored:
    """What idempotency needs of an earlier prediction."""

    payload_sha256: str
    response: bytes


@dataclass(frozen=True)
class Label:
    """A label that arrived for a request: ``value`` for ``subject`` (``""``: the
    request's outcome itself), known at ``label_time_ms``."""

    request_id: str
    value: float
    label_time_ms: int
    subject: str = ""


@dataclass(frozen=True)
class Recent:
    """A recent prediction's inputs and outputs (JSON), newest first."""

    inputs: bytes
    outputs: bytes


@dataclass(frozen=True)
class Joined:
    """Predictions with the labels known for them, column by column (``labels``: an
    empty mapping where none has arrived; ``segments``: the value segmented by)."""

    request_ids: list[str] = field(default_factory=list)
    decided_ms: list[int] = field(default_factory=list)
    model_versions: list[str] = field(default_factory=list)
    arms: list[str] = field(default_factory=list)
    segments: list[str | None] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class ShadowPairs:
    """A shadowed challenger's labelled predictions beside the champion's (row-aligned),
    and how often the challenger was asked and failed."""

    champion: list[dict[str, Any]]
    challenger: list[dict[str, Any]]
    labels: list[dict[str, float]]
    calls: int
    errors: int


class PredictionLog(Protocol):
    """Where predictions are written, found again (idempotency) and read back."""

    async def write(self, row: Row) -> None:
        """Hand ``row`` over; return once the batch carrying it is committed."""
        ...

    def write_many(self, rows: Sequence[Row]) -> None:
        """Commit ``rows`` now (a streaming scorer's micro-batch)."""
        ...

    def find(self, key: str) -> Stored | None:
        """The prediction stored under an idempotency key."""
        ...

    def recent(
        self, limit: int, *, model_version: str | None = None, since_ms: int | None = None
    ) -> list[Recent]:
        """The newest ``limit`` predictions (of one version, from ``since_ms``)."""
        ...

    def close(self) -> None: ...


class Outcomes(Protocol):
    """The labels beside the log, and the queries that join them (the feedback loop's)."""

    def add_labels(
        self, labels: Iterable[Label], *, keep: Keep = "latest",
        position: tuple[str, int, int] | None = None,
    ) -> int:  # fmt: skip
        """Store labels; return how many changed a stored one. ``keep``: which value
        wins for a ``(request, subject)`` labelled twice (``max``: a positive outcome
        wins; ``latest``; ``first``). ``position`` (topic, partition, next offset): how
        far a labels topic was read, kept in the same transaction."""
        ...

    def label_offset(self, topic: str, partition: int) -> int:
        """The next offset of a labels topic's partition to read."""
        ...

    def joined(
        self, *, decided_from_ms: int = 0, decided_until_ms: int = 2**62,
        labelled_before_ms: int = 2**62, model_version: str | None = None,
        segment: str | None = None,
    ) -> Joined:  # fmt: skip
        """Predictions decided in ``[decided_from_ms, decided_until_ms)`` with the labels
        that arrived before ``labelled_before_ms``, oldest first. ``segment``: a
        declared or generic column, or ``input:<name>`` (a logged input's value)."""
        ...

    def shadow_pairs(
        self, challenger: str, *, labelled_before_ms: int, decided_before_ms: int = 2**62
    ) -> ShadowPairs:
        """The labelled predictions a challenger shadowed, decided before
        ``decided_before_ms``, with the labels known before ``labelled_before_ms``."""
        ...


class Log(PredictionLog, Outcomes, Protocol):
    """A prediction log that also keeps the labels: what the backends implement."""

    def count(self) -> int: ...


Notify = Callable[[Sequence[Row]], None]


def check_columns(columns: Sequence[Column]) -> tuple[Column, ...]:
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise ConfigError(f"Declared prediction-log columns repeat a name: {names}.")
    return tuple(columns)


def segment_of(segment: str | None, columns: Sequence[Column]) -> tuple[str, str | None]:
    """The SQL expression to select for ``segment`` (a column) and, for
    ``input:<name>``, the input's name (read from the inputs JSON instead)."""
    if segment is None:
        return "NULL", None
    if segment.startswith("input:"):
        return "NULL", segment.removeprefix("input:")
    if segment in SEGMENTS or segment in {c.name for c in columns}:
        return f"p.{segment}", None
    raise ConfigError(
        f"segment={segment!r}: use one of {[*SEGMENTS, *(c.name for c in columns)]} "
        "or 'input:<name>'."
    )
