"""Request-time and derived features: vectorised functions of columns, online and offline.

The same function runs on the columns of one incoming event (serving) and on the columns
of a whole spine (training), so the two cannot drift apart. Each also has ``compute_one``:
the same arithmetic on one event's numbers (NumPy's per-call cost on one-element arrays,
~2-4 µs a call, was more than the work: ~100 µs an event for the fraud features). The
transcendental functions there are still NumPy's (on a scalar), whose SIMD versions may
differ from ``math``'s in the last bit; ``+ - * /``, comparisons and ``sqrt`` are exact in
both, so the two paths agree exactly (a property test checks it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

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

    def compute_one(self, event: Mapping[str, Any]) -> float:
        """:meth:`compute` of one event (``event[column]``: its value, a scalar)."""
        x = event[self.column]
        if self.transform == "equals":
            return 1.0 if x == self.value else 0.0
        if self.transform in ("value", "log1p"):
            v = math.nan if x is None else float(x)
            return float(np.log1p(v)) if self.transform == "log1p" else v
        ts = int(x)
        if self.transform == "hour_of_day":
            return float((ts // _HOUR) % 24)
        dow = ((ts // _DAY) + 3) % 7
        return (1.0 if dow >= 5 else 0.0) if self.transform == "is_weekend" else float(dow)


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

    def compute_one(self, values: Mapping[str, float]) -> float:
        num, den = values[self.numerator], values[self.denominator]
        return num / den if den != 0 else math.nan


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

    def compute_one(self, values: Mapping[str, float]) -> float:
        v, m, s = values[self.value], values[self.mean], values[self.std]
        return (v - m) / s if s > 0 else math.nan


@dataclass(frozen=True, slots=True, kw_only=True)
class Distance:
    """Great-circle distance in km between two (latitude, longitude) points given as
    feature names: e.g. a transaction's location and the card's usual one. NaN where
    either is unknown."""

    name: str
    lat: str
    lon: str
    to_lat: str
    to_lon: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.lat, self.lon, self.to_lat, self.to_lon)

    def compute(self, columns: Mapping[str, F64]) -> F64:
        lat1, lon1, lat2, lon2 = (np.radians(columns[c]) for c in self.inputs)
        h = (
            np.sin((lat2 - lat1) / 2) ** 2
            + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
        )
        return np.asarray(2 * _EARTH_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), np.float64)

    def compute_one(self, values: Mapping[str, float]) -> float:
        # the same ufuncs as compute, each called once on the numbers that need it
        lat1, lon1, lat2, lon2 = np.radians([values[c] for c in self.inputs]).tolist()
        half_dlat, half_dlon = np.sin([(lat2 - lat1) / 2, (lon2 - lon1) / 2]).tolist()
        cos1, cos2 = np.cos([lat1, lat2]).tolist()
        h = half_dlat * half_dlat + cos1 * cos2 * (half_dlon * half_dlon)
        if not math.isnan(h):  # np.clip keeps NaN, and gives +0.0 for -0.0
            h = min(h if h > 0.0 else 0.0, 1.0)
        return 2 * _EARTH_KM * float(np.arcsin(math.sqrt(h)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Speed:
    """``distance`` (km) over ``elapsed`` (ms) in km/h: e.g. the travel speed implied by
    two consecutive card transactions. Elapsed times under ``min_elapsed_ms`` count as
    that much (no division by zero); NaN where either input is unknown."""

    name: str
    distance: str
    elapsed: str
    min_elapsed_ms: float = 60_000.0

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.distance, self.elapsed)

    def compute(self, columns: Mapping[str, F64]) -> F64:
        hours = np.maximum(columns[self.elapsed], self.min_elapsed_ms) / _HOUR
        return np.asarray(columns[self.distance] / hours, dtype=np.float64)

    def compute_one(self, values: Mapping[str, float]) -> float:
        elapsed = values[self.elapsed]
        if not math.isnan(elapsed):  # np.maximum keeps NaN, and gives a tie's second
            elapsed = elapsed if elapsed > self.min_elapsed_ms else self.min_elapsed_ms
        hours = elapsed / _HOUR
        if hours == 0:  # min_elapsed_ms=0: IEEE division, as NumPy's
            return float(np.float64(values[self.distance]) / hours)
        return values[self.distance] / hours


_EARTH_KM = 6371.0088  # mean Earth radius (IUGG)
Derived = Ratio | ZScore | Distance | Speed
