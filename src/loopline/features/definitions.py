"""Declarative feature definitions: entities, sources, windowed aggregations, feature views.

Plain frozen dataclasses, checked on creation. A view's :attr:`FeatureView.version` is a
fingerprint of its definition: change anything that changes values and it is a new
version, whose state lives beside the old one's until the old one is retired.

Example::

    card = Entity(name="card", join_key="card_token")
    payments = Source(name="payments", topic="transactions", timestamp="event_time_ms")
    velocity = FeatureView(
        name="card_velocity", entity=card, source=payments,
        aggregations=(
            Aggregation(function="count", windows=(minutes(1), hours(1))),
            Aggregation(function="sum", column="amount", windows=(hours(1), days(1))),
            Aggregation(function="count", windows=(days(1),), where=Filter("channel", "cnp")),
        ),
    )
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from loopline.exceptions import ConfigError
from loopline.units import DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS

Function = Literal[
    "count",
    "sum",
    "mean",
    "min",
    "max",
    "std",
    "distinct_count",
    "last",
    "time_since_last",
    "last_n",
]
FUNCTIONS: tuple[str, ...] = get_args(Function)
NEEDS_COLUMN = frozenset(FUNCTIONS) - {"count", "time_since_last"}
VECTOR_FUNCTIONS = ("sum", "mean")  # the functions that take a vector column (``dim``)


def seconds(n: int) -> int:
    """``n`` seconds in milliseconds (windows and hops are integer milliseconds)."""
    return n * SECOND_MS


def minutes(n: int) -> int:
    return n * MINUTE_MS


def hours(n: int) -> int:
    return n * HOUR_MS


def days(n: int) -> int:
    return n * DAY_MS


def window_label(window_ms: int) -> str:
    """``3600000`` -> ``"1h"``: the suffix of feature names."""
    for unit, size in (("d", DAY_MS), ("h", HOUR_MS), ("m", MINUTE_MS), ("s", SECOND_MS)):
        if window_ms % size == 0:
            return f"{window_ms // size}{unit}"
    return f"{window_ms}ms"


def default_hop(window_ms: int) -> int:
    """The tile size of a window: 1/60 of it, at least one second (1 min -> 1 s, 1 h -> 1 min,
    1 d -> 24 min, 30 d -> 12 h): 60 tiles per window whatever its length."""
    return max(SECOND_MS, window_ms // 60)


@dataclass(frozen=True, slots=True, kw_only=True)
class Entity:
    """What features describe (a card, a merchant), and the event field holding its key."""

    name: str
    join_key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """Events on an event-log topic, plus their history as Parquet files for backfills."""

    name: str
    topic: str
    timestamp: str = "event_time_ms"
    history: str | None = None


@dataclass(frozen=True, slots=True)
class Filter:
    """Keep events whose ``column`` equals ``value`` (e.g. ``Filter("channel", "cnp")``)."""

    column: str
    value: str | int | float | bool

    @property
    def label(self) -> str:
        return f"{self.column}_{self.value}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Aggregation:
    """One aggregate function over one column, for each of several windows.

    Args:
        function: count, sum, mean, min, max, std (population, ddof 0), distinct_count
            (exact), last (the value of the latest event; ties go to the larger value),
            time_since_last (milliseconds from the latest event in the window to the read),
            last_n (the values of the ``n`` newest events in the window, newest first).
        column: The event field aggregated; none for count and time_since_last.
        windows: Window lengths in milliseconds; the hop (tile size) of each is
            :func:`default_hop` unless ``hop`` is given.
        where: Only events matching this filter count.
        hop: Tile size in ms for all windows; each window must be a multiple of it.
        dim: The column holds vectors of this many floats (sum and mean only): the feature
            is a vector of ``dim`` lane sums or means.
        n: For last_n, how many values: the feature is a list of ``n``, NaN-padded.
    """

    function: Function
    windows: tuple[int, ...]
    column: str | None = None
    where: Filter | None = None
    hop: int | None = None
    # not in the repr: the fingerprints of views declared before these existed stay put
    dim: int | None = field(default=None, repr=False)
    n: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.function not in FUNCTIONS:
            raise ConfigError(
                f"Aggregation 'function' must be one of {', '.join(FUNCTIONS)}. "
                f"Got {self.function!r}."
            )
        if (self.column is None) == (self.function in NEEDS_COLUMN):
            need = "needs a 'column'" if self.function in NEEDS_COLUMN else "takes no 'column'"
            raise ConfigError(f"Aggregation {self.function!r} {need}. Got column={self.column!r}.")
        if not self.windows:
            raise ConfigError(f"Aggregation {self.function!r} needs at least one window.")
        self._check_shape()
        for w in self.windows:
            if not isinstance(w, int) or w <= 0:
                raise ConfigError(
                    f"The windows of Aggregation {self.function!r} must be positive integer "
                    f"milliseconds (use minutes(5), hours(1), ...). Got {w!r}."
                )
            if w % self.hop_for(w):
                raise ConfigError(
                    f"Window {w} ms of Aggregation {self.function!r} is not a multiple of its "
                    f"hop {self.hop_for(w)} ms. Pick a window of whole hops."
                )

    def _check_shape(self) -> None:
        """``dim`` only with a vector function, ``n`` only (and always) with last_n."""
        for option, value in (("dim", self.dim), ("n", self.n)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(
                    f"The {option!r} of Aggregation {self.function!r} over {self.column!r} "
                    f"must be a positive integer. Got {value!r}."
                )
            if value is not None and value <= 0:
                raise ConfigError(
                    f"The {option!r} of Aggregation {self.function!r} over {self.column!r} "
                    f"must be a positive integer. Got {value!r}."
                )
        if self.dim is not None and self.function not in VECTOR_FUNCTIONS:
            raise ConfigError(
                f"Aggregation {self.function!r} cannot take the vector column {self.column!r} "
                f"(dim={self.dim}): only {' and '.join(VECTOR_FUNCTIONS)} have vector values."
            )
        if (self.n is not None) != (self.function == "last_n"):
            need = "needs 'n', how many values" if self.function == "last_n" else "takes no 'n'"
            raise ConfigError(f"Aggregation {self.function!r} {need}. Got n={self.n!r}.")

    @property
    def width(self) -> int:
        """How many numbers a value of this aggregation is: ``dim``, ``n``, or 1."""
        return self.dim or self.n or 1

    @property
    def fingerprint(self) -> str:
        """The repr, with ``dim`` and ``n`` where set (what :attr:`FeatureView.version`
        hashes)."""
        extra = "".join(f", {k}={v!r}" for k, v in (("dim", self.dim), ("n", self.n)) if v)
        return repr(self)[:-1] + extra + ")"

    def hop_for(self, window_ms: int) -> int:
        return self.hop or default_hop(window_ms)

    def feature_name(self, window_ms: int) -> str:
        """``<column>_<function>[_<filter>]_<window>``; last_n reads ``last<n>``
        (``item_id_last10_1h``)."""
        function = f"last{self.n}" if self.function == "last_n" else self.function
        parts: list[str] = [self.column, function] if self.column else [function]
        if self.where is not None:
            parts.append(self.where.label)
        return "_".join([*parts, window_label(window_ms)])


class _Verbatim(str):
    """A string whose repr is itself: an aggregation's fingerprint inside the view's."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True, slots=True)
class Feature:
    """One output column of a view: an aggregation over one window."""

    name: str
    aggregation: Aggregation
    window_ms: int

    @property
    def hop_ms(self) -> int:
        return self.aggregation.hop_for(self.window_ms)

    @property
    def width(self) -> int:
        """How many numbers the value is: 1 for a scalar, ``dim`` or ``n`` for a vector."""
        return self.aggregation.width

    @property
    def scalar(self) -> bool:
        """Whether the value is one number (not a vector or a list)."""
        return self.aggregation.dim is None and self.aggregation.n is None

    @property
    def tiles(self) -> int:
        return self.window_ms // self.hop_ms


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureView:
    """Aggregations of one source's events per one entity, under one name.

    Args:
        name: The view's name; feature columns are ``<name>__<feature>``.
        entity: Whose features these are.
        source: Where the events come from.
        aggregations: What to compute.
        places: Each feature's (start, width) in a row of the view's values side by side
            (width 1, or a vector's ``dim``, a list's ``n``).
        scalar: Whether every feature is one number.
        width: How many numbers all the features are, side by side.
        allowed_lateness_ms: Events older than the newest event seen minus this are late:
            counted and sent to the dead-letter topic. Those within it land in their tiles.
    """

    name: str
    entity: Entity
    source: Source
    aggregations: tuple[Aggregation, ...]
    allowed_lateness_ms: int = 5 * MINUTE_MS
    features: tuple[Feature, ...] = field(init=False, repr=False, compare=False)
    places: dict[str, tuple[int, int]] = field(init=False, repr=False, compare=False)
    scalar: bool = field(init=False, repr=False, compare=False)
    width: int = field(init=False, repr=False, compare=False)
    _version: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.aggregations:
            raise ConfigError(f"FeatureView {self.name!r} needs at least one aggregation.")
        if self.allowed_lateness_ms < 0:
            raise ConfigError(
                f"FeatureView {self.name!r}: 'allowed_lateness_ms' must be >= 0. "
                f"Got {self.allowed_lateness_ms!r}."
            )
        feats = tuple(
            Feature(a.feature_name(w), a, w) for a in self.aggregations for w in a.windows
        )
        names = [f.name for f in feats]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"FeatureView {self.name!r} defines {duplicates} twice.")
        object.__setattr__(self, "features", feats)
        starts = np.cumsum([0, *(f.width for f in feats)]).tolist()
        places = {f.name: (start, f.width) for f, start in zip(feats, starts, strict=False)}
        object.__setattr__(self, "places", places)
        object.__setattr__(self, "scalar", all(f.scalar for f in feats))
        object.__setattr__(self, "width", starts[-1])
        text = repr(
            (
                self.name,
                self.entity,
                self.source.timestamp,
                tuple(_Verbatim(a.fingerprint) for a in self.aggregations),
                self.allowed_lateness_ms,
            )
        )
        object.__setattr__(self, "_version", hashlib.sha256(text.encode()).hexdigest()[:12])

    @property
    def version(self) -> str:
        """A fingerprint of everything that changes the values: 12 hex digits."""
        return self._version

    @property
    def columns(self) -> list[str]:
        """The event fields the view reads."""
        cols = {self.entity.join_key, self.source.timestamp}
        for a in self.aggregations:
            cols |= {c for c in (a.column, a.where.column if a.where else None) if c}
        return sorted(cols)

    @property
    def max_window_ms(self) -> int:
        return max(f.window_ms for f in self.features)
