"""Time-based splits: train, then a gap as long as the label delay, then test.

A model is trained on the past and judged on the future it will score; the gap leaves
out the days whose labels would not have arrived yet when the model was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopline.units import DAY_MS


@dataclass(frozen=True, kw_only=True)
class TimeSplit:
    """Day ranges from ``start_ms``: validation (the days just before training, for the
    threshold and calibration), training, the label-delay gap, then test."""

    start_ms: int
    train_days: int = 7
    delay_days: int = 7
    test_days: int = 7
    validation_days: int = 7

    def day(self, times_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Whole days since ``start_ms`` (negative before it)."""
        return np.floor_divide(np.asarray(times_ms) - self.start_ms, DAY_MS)

    def masks(self, times_ms: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[np.bool_]]:
        """Boolean row masks of ``validation``, ``train`` and ``test``."""
        d = self.day(times_ms)
        test_from = self.train_days + self.delay_days
        return {
            "validation": (d >= -self.validation_days) & (d < 0),
            "train": (d >= 0) & (d < self.train_days),
            "test": (d >= test_from) & (d < test_from + self.test_days),
        }

    def known_positive_filter(
        self,
        times_ms: npt.NDArray[np.int64],
        entities: npt.NDArray[np.generic],
        y: npt.NDArray[np.integer],
    ) -> npt.NDArray[np.bool_]:
        """Test rows to keep under the fraud handbook's protocol: an entity whose positive
        was known by a test day (found in training, or in the days whose labels had come
        in by then) is not scored that day; its case is already open."""
        d = self.day(times_ms)
        known = set(entities[(d >= 0) & (d < self.train_days) & (y == 1)].tolist())
        keep = np.zeros(len(d), dtype=bool)
        first_test = self.train_days + self.delay_days
        for k in range(self.test_days):
            seen = d == self.train_days + k - 1  # the delay period's days, one more each day
            known |= set(entities[seen & (y == 1)].tolist())
            today = np.flatnonzero(d == first_test + k)
            keep[today] = ~np.isin(entities[today], list(known))
        return keep
