"""The benchmark's tracker comparison: with detections taken from the truth itself, both
trackers score near perfectly, the joined clips keep their identities apart (two clips
whose identities both start at 1 would otherwise merge), and confidence-dropped
detections hurt the one-stage baseline more than ByteTrack."""

from __future__ import annotations

import numpy as np

from loopline.apps.vision import scenes
from loopline.apps.vision.boxes import Detections
from loopline.apps.vision.measure import compare_trackers
from loopline.apps.vision.trackmetrics import Frame


def clips(scores: float | None = None) -> tuple[list[list[Frame]], list[list[Detections]]]:
    rng = np.random.default_rng(0)
    truth: list[list[Frame]] = []
    found: list[list[Detections]] = []
    for k in range(2):
        truth.append([])
        found.append([])
        for f in scenes.clip(scenes.Scenario(f"m{k}", 70 + k, frames=60)):
            truth[k].append((f.track_ids, f.boxes))
            s = np.full(len(f.boxes), 0.9, np.float32)
            if scores is not None:  # half the boxes only weakly detected
                s[rng.random(len(s)) < 0.5] = scores
            found[k].append(Detections(f.boxes.copy(), s, f.classes.copy()))
    return truth, found


def test_detections_from_the_truth_score_near_perfect_and_clips_stay_apart() -> None:
    truth, found = clips()
    ids = [set().union(*(set(ids.tolist()) for ids, _ in clip)) for clip in truth]
    assert ids[0] & ids[1], "the clips share identity numbers (each numbers from 1)"
    got = compare_trackers(truth, found)
    assert got["tracking_frames"] == 120
    assert got["hota"] > 0.9
    assert got["idf1"] > 0.9
    assert got["baseline_idf1"] > 0.85


def test_weak_detections_hurt_the_one_stage_baseline_more() -> None:
    truth, found = clips(scores=0.3)  # under SORT's threshold, within ByteTrack's second stage
    got = compare_trackers(truth, found)
    assert got["hota"] > got["baseline_hota"] + 0.05, got
    assert got["mota"] > got["baseline_mota"], got
