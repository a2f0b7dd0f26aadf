"""Multi-object tracking: ByteTrack, and a SORT-style baseline to measure it against.

Both trackers share one constant-velocity Kalman filter over ``(cx, cy, w, h)`` and their
velocities, kept for all tracks at once in arrays (a row per track): a step is a handful of
NumPy calls and one or two Hungarian assignments whatever the number of tracks, which keeps
it well under a millisecond on the frame deadline. Its noise is diagonal (ByteTrack's, scaled
by the box's size) and each coordinate moves only by its own velocity, so the 8x8 covariance
is four independent 2x2 blocks from the first frame on: they are stored as such, which is
the same filter without the matrix algebra. The trackers differ only in which detections
they match to which tracks:

- :class:`ByteTracker` (Zhang et al., 2022) matches confident detections to every track
  first, then the weak ones to the confirmed tracks left over. A partly hidden object is
  often still detected, weakly; the second stage keeps its track, where a single threshold
  would drop it or, set low enough to keep it, start tracks on background clutter.
- :class:`SortTracker` (Bewley et al., 2016) matches the detections above one threshold in
  one stage, and ignores the rest.

Both call :meth:`predict_only` on a frame the runtime dropped for its deadline: the tracks
move by the motion model, nothing is matched, and the frame counts towards their age.

Example:
    >>> import numpy as np
    >>> from loopline.apps.vision.boxes import Detections
    >>> tracker = ByteTracker()
    >>> dets = Detections(np.array([[10, 10, 50, 90]], np.float32),
    ...                   np.array([0.9], np.float32), np.array([1]))
    >>> tracker.update(dets).ids
    array([1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from loopline.apps.vision.boxes import Boxes, Detections, Tracks, iou
from loopline.exceptions import ConfigError

_Index = NDArray[np.int64]

# Noise as fractions of the box's size, so a near object and a far one are equally sure
# (ByteTrack's weights for its (cx, cy, w, h) filter).
_STD_POSITION = 1 / 20
_STD_VELOCITY = 1 / 160
_EMPTY = np.zeros(0, np.int64)


def _require(settings: object, field: str, ok: bool, rule: str) -> None:
    if not ok:
        value = getattr(settings, field)
        raise ConfigError(f"{type(settings).__name__}.{field} must be {rule}. Got {value!r}.")


def _check_common(settings: ByteTrackSettings | SortTrackerSettings) -> None:
    _require(settings, "match_iou", 0 < settings.match_iou <= 1, "within (0, 1]")
    _require(settings, "min_hits", settings.min_hits >= 1, "at least 1")
    _require(settings, "max_age", settings.max_age >= 0, "at least 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class ByteTrackSettings:
    """ByteTrack's thresholds; the defaults are the paper's.

    Attributes:
        high_threshold: Detections scoring at least this are matched in the first stage.
        low_threshold: Detections scoring in ``[low, high)`` may only extend confirmed
            tracks, in the second stage; below it they are ignored.
        birth_threshold: An unmatched first-stage detection starts a track only from this
            score up, a margin above ``high_threshold`` against one-frame false alarms.
        match_iou: The least IoU of a first-stage match (loose, for fast motion).
        low_match_iou: The least IoU of a second-stage match: weak boxes must fit well.
        min_hits: Matches before a new track is confirmed and reported.
        max_age: Frames a lost track is kept, moving by its velocity, to be matched again.
    """

    high_threshold: float = 0.5
    low_threshold: float = 0.1
    birth_threshold: float = 0.6
    match_iou: float = 0.2
    low_match_iou: float = 0.5
    min_hits: int = 2
    max_age: int = 30

    def __post_init__(self) -> None:
        _check_common(self)
        _require(self, "high_threshold", 0 <= self.high_threshold <= 1, "within [0, 1]")
        _require(self, "birth_threshold", 0 <= self.birth_threshold <= 1, "within [0, 1]")
        _require(self, "low_threshold", 0 <= self.low_threshold <= self.high_threshold,
                 "within [0, high_threshold]")  # fmt: skip
        _require(self, "low_match_iou", 0 < self.low_match_iou <= 1, "within (0, 1]")


@dataclass(frozen=True, slots=True, kw_only=True)
class SortTrackerSettings:
    """The SORT-style baseline's settings. SORT's paper keeps lost tracks for one frame;
    ``max_age`` defaults to ByteTrack's 30 here, so that a comparison measures the second
    matching stage, not how long tracks are kept.

    Attributes:
        threshold: Detections below this score are ignored.
        match_iou: The least IoU of a match (SORT's 0.3).
        min_hits: Matches before a new track is confirmed and reported (SORT's 3).
        max_age: Frames a lost track is kept, moving by its velocity, to be matched again.
    """

    threshold: float = 0.5
    match_iou: float = 0.3
    min_hits: int = 3
    max_age: int = 30

    def __post_init__(self) -> None:
        _check_common(self)
        _require(self, "threshold", 0 <= self.threshold <= 1, "within [0, 1]")


def _cxcywh(boxes: Boxes) -> NDArray[np.float64]:
    b = boxes.astype(np.float64)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                     b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)  # fmt: skip


def _size(state: NDArray[np.float64]) -> NDArray[np.float64]:
    """(w, h, w, h) of each row, at least a pixel: noise scales with it, and a lost track's
    shrinking box must not make it zero or negative."""
    return np.maximum(state[:, [2, 3, 2, 3]], 1.0)


class _TrackTable:
    """Every track's filter state and bookkeeping, one row per track."""

    _COLUMNS = ("mean", "cov", "ids", "classes", "scores", "hits", "age", "lost", "confirmed")

    def __init__(self) -> None:
        self.mean = np.zeros((0, 8))  # cx, cy, w, h and their velocities per frame
        # Per coordinate: var(position), cov(position, velocity), var(velocity).
        self.cov = np.zeros((0, 3, 4))
        self.ids = np.zeros(0, np.int64)
        self.classes = np.zeros(0, np.int64)
        self.scores = np.zeros(0, np.float32)
        self.hits = np.zeros(0, np.int64)
        self.age = np.zeros(0, np.int64)  # frames since the last match, dropped ones too
        self.lost = np.zeros(0, np.bool_)  # not matched in the last frame that was seen
        self.confirmed = np.zeros(0, np.bool_)

    def __len__(self) -> int:
        return len(self.ids)

    def boxes(self) -> Boxes:
        c, s = self.mean[:, :2], np.maximum(self.mean[:, 2:4], 1.0) / 2
        return np.concatenate([c - s, c + s], axis=1).astype(np.float32)

    def predict(self) -> None:
        # A lost track keeps its size (ByteTrack's rule): unchecked, a shrinking box
        # vanishes during a long occlusion.
        self.mean[self.lost, 6:] = 0.0
        size = _size(self.mean)
        self.mean[:, :4] += self.mean[:, 4:]
        xx, xv, vv = self.cov[:, 0], self.cov[:, 1], self.cov[:, 2]
        # F P F' + Q, with F = [[1, 1], [0, 1]] per coordinate.
        self.cov = np.stack([xx + 2 * xv + vv + (_STD_POSITION * size) ** 2, xv + vv,
                             vv + (_STD_VELOCITY * size) ** 2], axis=1)  # fmt: skip
        self.age += 1

    def correct(self, rows: _Index, dets: Detections) -> None:
        """The Kalman update of ``rows`` with their matched detections, all at once."""
        m, c = self.mean[rows], self.cov[rows]
        xx, xv, vv = c[:, 0], c[:, 1], c[:, 2]
        # Per coordinate H = [1, 0]: S = xx + R, K = (xx, xv) / S, P -= K H P.
        s = xx + (_STD_POSITION * _size(m)) ** 2
        kx, kv = xx / s, xv / s
        innovation = _cxcywh(dets.boxes) - m[:, :4]
        self.mean[rows] = m + np.concatenate([kx * innovation, kv * innovation], axis=1)
        self.cov[rows] = np.stack([xx - kx * xx, xv - kx * xv, vv - kv * xv], axis=1)
        self.scores[rows] = dets.scores
        self.hits[rows] += 1
        self.age[rows] = 0

    def spawn(self, dets: Detections, first_id: int, *, confirmed: bool) -> None:
        n = len(dets)
        if n == 0:
            return
        z = _cxcywh(dets.boxes)
        size = _size(z)
        cov = np.stack([(2 * _STD_POSITION * size) ** 2, np.zeros((n, 4)),
                        (10 * _STD_VELOCITY * size) ** 2], axis=1)  # fmt: skip
        self.mean = np.concatenate([self.mean, np.c_[z, np.zeros((n, 4))]])
        self.cov = np.concatenate([self.cov, cov])
        self.ids = np.concatenate([self.ids, np.arange(first_id, first_id + n, dtype=np.int64)])
        self.classes = np.concatenate([self.classes, dets.classes])
        self.scores = np.concatenate([self.scores, dets.scores])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.age = np.concatenate([self.age, np.zeros(n, np.int64)])
        self.lost = np.concatenate([self.lost, np.zeros(n, np.bool_)])
        self.confirmed = np.concatenate([self.confirmed, np.full(n, confirmed)])

    def keep(self, rows: NDArray[np.bool_]) -> None:
        for name in self._COLUMNS:
            setattr(self, name, getattr(self, name)[rows])

    def report(self) -> Tracks:
        """The confirmed tracks matched in the last frame seen, where they are now."""
        rows = self.confirmed & ~self.lost
        return Tracks(self.ids[rows], self.boxes()[rows], self.scores[rows], self.classes[rows])


def _assign(
    boxes: Boxes, classes: _Index, rows: _Index, dets: Detections, cols: _Index, min_iou: float
) -> tuple[_Index, _Index]:
    """Match tracks ``rows`` to detections ``cols`` of the same class, maximising the total
    IoU over pairs of at least ``min_iou``; the matched rows and columns."""
    if len(rows) == 0 or len(cols) == 0:
        return _EMPTY, _EMPTY
    overlap = iou(boxes[rows], dets.boxes[cols])
    # Gate before assigning, so the assignment never trades a valid pair for an invalid one.
    overlap[(overlap < min_iou) | (classes[rows, None] != dets.classes[None, cols])] = 0.0
    r, c = linear_sum_assignment(overlap, maximize=True)
    ok = overlap[r, c] > 0.0
    return rows[r[ok]], cols[c[ok]]


class _Tracker:
    """What both trackers share: the steps around matching."""

    def __init__(self, *, min_hits: int, max_age: int) -> None:
        self._min_hits, self._max_age = min_hits, max_age
        self.tracks_ = _TrackTable()
        self.frames_ = 0
        self.next_id_ = 1

    def _match(self, dets: Detections, boxes: Boxes) -> tuple[_Index, _Index, _Index]:
        """Matched track rows, their detections, and the detections that start tracks."""
        raise NotImplementedError

    def update(self, dets: Detections) -> Tracks:
        """Advance every track one frame, match ``dets`` to them, start and end tracks;
        the confirmed tracks seen in this frame."""
        t = self.tracks_
        self.frames_ += 1
        t.predict()
        rows, cols, born = self._match(dets, t.boxes())
        t.correct(rows, dets.take(cols))
        t.lost = t.age > 0
        # A tentative track missed once is dropped (it was likely a false alarm); a
        # confirmed one is kept for max_age frames.
        t.keep((t.age <= self._max_age) & (t.confirmed | ~t.lost))
        # Tracks born in a stream's first frames have nothing before them to be confirmed
        # against; waiting would only hide the scene's objects for min_hits - 1 frames.
        t.spawn(dets.take(born), self.next_id_, confirmed=self.frames_ <= self._min_hits)
        self.next_id_ += len(born)
        t.confirmed |= t.hits >= self._min_hits
        return t.report()

    def held(self) -> Tracks:
        """Every confirmed track the tracker keeps, matched in the last frame or coasting
        on its motion model (what a trigger compares with the detections)."""
        t = self.tracks_
        rows = t.confirmed
        return Tracks(t.ids[rows], t.boxes()[rows], t.scores[rows], t.classes[rows])

    def predict_only(self) -> Tracks:
        """Advance every track one frame by its velocity, for a frame that was dropped;
        the confirmed tracks seen in the last frame, where they are predicted now."""
        self.frames_ += 1
        self.tracks_.predict()
        self.tracks_.keep(self.tracks_.age <= self._max_age)
        return self.tracks_.report()


class ByteTracker(_Tracker):
    """ByteTrack: two-stage association, high-score detections first, low-score second.

    A track's class is the class of the detection that started it, and it is matched only to
    detections of that class.
    """

    def __init__(self, settings: ByteTrackSettings | None = None) -> None:
        self.settings = ByteTrackSettings() if settings is None else settings
        super().__init__(min_hits=self.settings.min_hits, max_age=self.settings.max_age)

    def _match(self, dets: Detections, boxes: Boxes) -> tuple[_Index, _Index, _Index]:
        s, t = self.settings, self.tracks_
        high = dets.scores >= s.high_threshold
        low = (dets.scores >= s.low_threshold) & ~high
        r1, c1 = _assign(
            boxes, t.classes, np.arange(len(t)), dets, np.flatnonzero(high), s.match_iou
        )
        # Weak boxes are mostly background: they may only extend a track that has proven
        # itself, never a tentative one.
        left = t.confirmed.copy()
        left[r1] = False
        r2, c2 = _assign(
            boxes, t.classes, np.flatnonzero(left), dets, np.flatnonzero(low), s.low_match_iou
        )
        born = high & (dets.scores >= s.birth_threshold)
        born[c1] = False
        return np.concatenate([r1, r2]), np.concatenate([c1, c2]), np.flatnonzero(born)


class SortTracker(_Tracker):
    """The SORT-style baseline: one matching stage over the detections above one threshold,
    with the same Kalman filter and track life cycle as :class:`ByteTracker`."""

    def __init__(self, settings: SortTrackerSettings | None = None) -> None:
        self.settings = SortTrackerSettings() if settings is None else settings
        super().__init__(min_hits=self.settings.min_hits, max_age=self.settings.max_age)

    def _match(self, dets: Detections, boxes: Boxes) -> tuple[_Index, _Index, _Index]:
        kept = dets.scores >= self.settings.threshold
        t = self.tracks_
        rows, cols = _assign(
            boxes, t.classes, np.arange(len(t)), dets, np.flatnonzero(kept), self.settings.match_iou
        )
        kept[cols] = False
        return rows, cols, np.flatnonzero(kept)
