"""Confidence calibration by temperature scaling (Guo et al., "On Calibration of Modern
Neural Networks", 2017): one scalar ``T`` such that ``sigmoid(logit / T)`` is the
probability that a detection is a true positive, fitted by likelihood on held-out frames.
The expected calibration error (ECE, 10 equal-width bins) is reported before and after."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar


@dataclass(frozen=True)
class Calibration:
    temperature: float
    ece_before: float
    ece_after: float
    detections: int


def fit_temperature(logits: NDArray[np.float32], hits: NDArray[np.bool_]) -> Calibration:
    """The temperature that best explains ``hits`` (true positives) from ``logits``."""
    z, y = logits.astype(np.float64), hits.astype(np.float64)
    if len(z) < 20 or y.min() == y.max():
        raise ValueError(f"too few detections or one outcome only ({len(z)}) to calibrate")

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, s) - y * s))  # binary cross-entropy on logits

    t = float(np.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))
    before = ece(1 / (1 + np.exp(-z)), y)
    after = ece(1 / (1 + np.exp(-z / t)), y)
    return Calibration(t, before, after, len(z))


def ece(p: NDArray[np.float64], y: NDArray[np.float64], bins: int = 10) -> float:
    """Expected calibration error: the gap between confidence and accuracy, bin by bin,
    weighted by how many detections fall in each."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    return float(total)
