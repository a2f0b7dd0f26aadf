"""Tracking metrics: HOTA (with DetA and AssA), MOTA and IDF1 of a tracker's output against
ground truth.

The scores are TrackEval's own (``trackeval.metrics.HOTA``, ``CLEAR``, ``Identity``), the
code behind the MOTChallenge and KITTI leaderboards, so our figures compare with published
ones; this module only feeds them the per-frame ids and IoU matrices they expect. The three
measure different things: MOTA counts detection errors and identity switches frame by frame,
IDF1 how long each true object keeps one predicted identity, and HOTA balances detection
(DetA) and association (AssA) over IoU thresholds from 0.05 to 0.95.

Example:
    >>> import numpy as np
    >>> frame = (np.array([1]), np.array([[0, 0, 10, 10]], np.float32))
    >>> score_tracking([frame, frame], [frame, frame]).mota
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision.boxes import Boxes, iou

Frame = tuple[NDArray[np.int64], Boxes]
"""One frame's objects: their ids (n,) and boxes (n, 4) ``x1, y1, x2, y2``."""

_NO_OBJECTS: Frame = (np.zeros(0, np.int64), np.zeros((0, 4), np.float32))


@dataclass(frozen=True, slots=True)
class TrackScores:
    """A tracker's scores on one sequence; the ratios are fractions, not percentages.

    Attributes:
        hota: Higher Order Tracking Accuracy, the mean over IoU thresholds 0.05..0.95 of
            ``sqrt(DetA * AssA)``.
        deta: Detection accuracy, ``TP / (TP + FN + FP)``, averaged as HOTA is.
        assa: Association accuracy: how well matched boxes agree on identities.
        mota: CLEAR MOT accuracy at IoU >= 0.5, ``1 - (FN + FP + IDSW) / objects``; below 0
            when the tracker makes more errors than there are objects.
        idf1: F1 of boxes matched under the best one-to-one mapping of identities.
        id_switches: Times a true object's matched identity changed (CLEAR's IDSW).
        false_positives: Predicted boxes matching no true object (at IoU >= 0.5).
        misses: True boxes matched by no predicted box (false negatives).
    """

    hota: float
    deta: float
    assa: float
    mota: float
    idf1: float
    id_switches: int
    false_positives: int
    misses: int


def score_tracking(truth: Sequence[Frame], tracked: Sequence[Frame]) -> TrackScores:
    """Score ``tracked`` against ``truth``, both a ``(ids, boxes)`` pair per frame.

    A sequence shorter than the other counts as empty in the frames it lacks (a
    MOTChallenge file stops at its last row), so a tracker that stops early is charged
    with the misses.

    Raises:
        ValueError: If a frame holds one id twice, or its ids and boxes differ in number.
    """
    from trackeval.metrics import CLEAR, HOTA, Identity

    data = _trackeval_data(truth, tracked)
    quiet = {"PRINT_CONFIG": False}
    hota = HOTA().eval_sequence(data)
    clear = CLEAR(dict(quiet)).eval_sequence(data)
    identity = Identity(dict(quiet)).eval_sequence(data)
    return TrackScores(
        hota=float(np.mean(hota["HOTA"])),
        deta=float(np.mean(hota["DetA"])),
        assa=float(np.mean(hota["AssA"])),
        mota=float(clear["MOTA"]),
        idf1=float(identity["IDF1"]),
        id_switches=int(clear["IDSW"]),
        false_positives=int(clear["CLR_FP"]),
        misses=int(clear["CLR_FN"]),
    )


def _trackeval_data(truth: Sequence[Frame], tracked: Sequence[Frame]) -> dict[str, Any]:
    """TrackEval's sequence dict: ids renumbered 0..n-1 over the sequence, and each frame's
    IoU matrix (truth rows, tracker columns)."""
    frames = max(len(truth), len(tracked))
    truth = [*truth, *[_NO_OBJECTS] * (frames - len(truth))]
    tracked = [*tracked, *[_NO_OBJECTS] * (frames - len(tracked))]
    for name, seq in (("truth", truth), ("tracked", tracked)):
        for t, (ids, boxes) in enumerate(seq):
            if len(ids) != len(boxes) or len(np.unique(ids)) != len(ids):
                raise ValueError(
                    f"Frame {t} of {name} must hold as many boxes as ids, each id once. "
                    f"Got ids {np.asarray(ids).tolist()} and {len(boxes)} boxes."
                )
    truth_ids = np.unique(np.concatenate([_NO_OBJECTS[0], *(ids for ids, _ in truth)]))
    tracker_ids = np.unique(np.concatenate([_NO_OBJECTS[0], *(ids for ids, _ in tracked)]))
    return {
        "num_timesteps": frames,
        "num_gt_ids": len(truth_ids),
        "num_tracker_ids": len(tracker_ids),
        "num_gt_dets": sum(len(ids) for ids, _ in truth),
        "num_tracker_dets": sum(len(ids) for ids, _ in tracked),
        "gt_ids": [np.searchsorted(truth_ids, ids) for ids, _ in truth],
        "tracker_ids": [np.searchsorted(tracker_ids, ids) for ids, _ in tracked],
        "similarity_scores": [
            iou(g.astype(np.float32), p.astype(np.float32)).astype(np.float64)
            for (_, g), (_, p) in zip(truth, tracked, strict=True)
        ],
    }


def read_motchallenge(path: str | Path, *, min_confidence: float | None = None) -> list[Frame]:
    """Read a MOTChallenge text file (``frame, id, x, y, w, h, conf, ...``, frames from 1)
    into one ``(ids, boxes)`` pair per frame, up to the file's last frame.

    Args:
        path: The file: ground truth (``gt.txt``) or a tracker's output.
        min_confidence: Keep only rows whose ``conf`` is at least this; MOTChallenge's
            ground truth marks the boxes not to score with 0. None keeps every row.
    """
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines:
        return []
    rows = np.loadtxt(lines, delimiter=",", ndmin=2, usecols=range(7))  # MOT15: 10, MOT16: 9
    if min_confidence is not None:
        rows = rows[rows[:, 6] >= min_confidence]
    frame = rows[:, 0].astype(np.int64)
    boxes = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)
    out: list[Frame] = [_NO_OBJECTS] * int(frame.max(initial=0))
    for f in np.unique(frame):
        here = frame == f
        out[f - 1] = (rows[here, 1].astype(np.int64), boxes[here].astype(np.float32))
    return out
