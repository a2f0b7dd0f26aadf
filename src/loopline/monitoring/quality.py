"""Data quality at ingestion: what a topic's events must look like beyond their schema.

The schema (a msgspec struct) already rejects wrong types. :class:`Expectations` adds
the rest. Two kinds of check:

Per record: ranges, allowed categories, required fields. A record that breaks one is
dead-lettered with a reason that names the field, the value and the fix, and the rest of
its batch goes on.

Per batch: null rates and category cardinality. They describe the producer rather than
one record, so they are reported (metrics and :attr:`BatchQuality.breaches`), never
dead-lettered.

Checks run on the batch's columns, vectorised: a few µs a batch per field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from loopline.exceptions import LooplineError


class DataQualityError(LooplineError, ValueError):
    """A record breaks its topic's expectations (the reason says how)."""


@dataclass(frozen=True)
class BatchQuality:
    """One batch's null rates and category counts, and the limits they broke."""

    null_rates: dict[str, float]
    cardinality: dict[str, int]
    breaches: list[str]


@dataclass(frozen=True, kw_only=True)
class Expectations:
    """What a topic's events must satisfy.

    Args:
        ranges: Field -> (lowest, highest) allowed, both included (NaN: missing, not
            out of range).
        allowed: Field -> the values it may take.
        required: Fields that must be present and non-empty.
        max_null_rate: Field -> the largest share of a batch that may miss it (reported).
        max_cardinality: Field -> the most distinct values a batch may hold (reported).
        where: Where these expectations are declared, for the fix in the reasons.
    """

    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    allowed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    max_null_rate: Mapping[str, float] = field(default_factory=dict)
    max_cardinality: Mapping[str, int] = field(default_factory=dict)
    where: str = "the topic's Expectations"

    @property
    def fields(self) -> set[str]:
        """Every field these expectations read."""
        return {
            *self.required,
            *self.ranges,
            *self.allowed,
            *self.max_null_rate,
            *self.max_cardinality,
        }

    def check(
        self, columns: Mapping[str, npt.NDArray[np.generic]]
    ) -> tuple[list[tuple[str, str] | None], BatchQuality]:
        """Each row's first broken expectation as (field, reason), None where it is fine;
        and the batch's quality."""
        n = len(next(iter(columns.values()))) if columns else 0
        reasons: list[tuple[str, str] | None] = [None] * n

        def flag(mask: npt.NDArray[np.bool_], say: str, column: npt.NDArray[np.generic]) -> None:
            name = say.split("=")[0].split(" ")[0]
            for i in np.flatnonzero(mask).tolist():
                if reasons[i] is None:
                    reasons[i] = (name, say.format(value=column[i].item()))

        for name in self.required:
            column = np.asarray(columns[name])
            missing = _missing(column)
            flag(missing, f"{name} is required and is missing ({{value!r}}): send it.", column)
        for name, (low, high) in self.ranges.items():
            column = np.asarray(columns[name], dtype=np.float64)
            outside = ~np.isnan(column) & ((column < low) | (column > high))
            flag(
                outside,
                f"{name}={{value!r}} is outside [{low}, {high}]: correct the producer, or "
                f"widen the range in {self.where}.",
                column,
            )
        for name, values in self.allowed.items():
            column = np.asarray(columns[name])
            unknown = ~_missing(column) & ~np.isin(column, sorted(values))
            flag(
                unknown,
                f"{name}={{value!r}} is not one of {sorted(values)}: correct the producer, or "
                f"add it in {self.where}.",
                column,
            )
        return reasons, self._batch(columns, n)

    def _batch(self, columns: Mapping[str, npt.NDArray[np.generic]], n: int) -> BatchQuality:
        rates, counts, breaches = {}, {}, []
        for name, limit in self.max_null_rate.items():
            rate = float(_missing(np.asarray(columns[name])).mean()) if n else 0.0
            rates[name] = rate
            if rate > limit:
                breaches.append(f"{name} is missing in {rate:.1%} of the batch (limit {limit:.1%})")
        for name, limit in self.max_cardinality.items():
            count = len(np.unique(np.asarray(columns[name])))
            counts[name] = count
            if count > limit:
                breaches.append(f"{name} takes {count} distinct values in a batch (limit {limit})")
        return BatchQuality(rates, counts, breaches)


def _missing(column: npt.NDArray[np.generic]) -> npt.NDArray[np.bool_]:
    if column.dtype.kind == "f":
        return np.asarray(np.isnan(column))
    if column.dtype.kind in "US":
        return np.asarray(column == "")
    return np.zeros(len(column), dtype=bool)
