"""Request-time and derived features: vectorised functions of columns, online and offline.

The same function runs on the columns of one incoming event (serving) and on the columns
of a whole spine (training), so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError

F64 = npt.NDArray[np.float64]
Transform = Literal["value", "log1p", "hour_of_day", "day_of_week", "is_weekend", "equals"]
_HOUR, _DAY = 3_600_000, 86_400_000


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFeature:
    """A feature of the incoming event itself.

    Args:
        name: The output column.
        column: The event field it reads.
        transform: ``value`` (as a number), ``log1p``, ``hour_of_day`` / ``day_of_week``
            (UTC, Monday = 0) / ``is_weekend`` of a millisecond timestamp, or ``equals``
            (1.0 where the field equals ``value``, else 0.0).
        value: The value compared by ``equals``.
    """

    name: str
    column: str
    transform: Transform = "value"
    value: str | int | float | None = None

    def __post_init__(self) -> None:
        if (self.transform == "equals") != (self.value is not None):
            raise ConfigError(
                f"RequestFeature {self.name!r}: 'value' goes with transform='equals' only. "
                f"Got transform={self.transform!r}, value={self.value!r}."
            )

    def compute(self, columns: Mapping[str, npt.NDArray[np.generic]]) -> F64:
        x = np.asarray(columns[self.column])
        if self.transform == "equals":
            return np.asarray(x == self.value, dtype=np.float64)
        if self.transform in ("value", "log1p"):
            v = x.astype(np.float64)
            return np.log1p(v) if self.transform == "log1p" else v
        ts = x.astype(np.int64)
        if self.transform == "hour_of_day":
            return ((ts // _HOUR) % 24).astype(np.float64)
        dow = ((ts // _DAY) + 3) % 7  # 1970-01-01 was a Thursday
        return (
            (dow >= 5).astype(np.float64)
            if self.transform == "is_weekend"
            else dow.astype(np.float64)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Ratio:
    """``numerator / denominator`` of two other features (NaN where the denominator is 0)."""

    name: str
    numerator: str
    denominator: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.numerator, self.denominator)

    def compute(self, columns: Mapping[str, F64]) -> F64:
        num, den = columns[self.numerator], columns[self.denominator]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


@dataclass(frozen=True, slots=True, kw_only=True)
class ZScore:
    """``(value - mean) / std``: e.g. the current amount against the card's 7-day history.
    NaN where the std is 0 or unknown."""

    name: str
    value: str
    mean: str
    std: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.value, self.mean, self.std)

    def compute(self, columns: Mapping[str, F64]) -> F64:
        v, m, s = columns[self.value], columns[self.mean], columns[self.std]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(s > 0, (v - m) / np.where(s > 0, s, 1.0), np.nan)


Derived = Ratio | ZScore
