"""The fleet data loop: the triggers and their cooldowns, the recorder's clips in the upload
queue, the clip format; and the cloud side: the release gate, labels for uploaded clips and
the safety suite's scoring."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from loopline.apps.vision import scenes
from loopline.apps.vision.boxes import Detections, Tracks
from loopline.apps.vision.fleet import (
    PRIORITY,
    Clip,
    Recorder,
    Trigger,
    TriggerConfig,
    Triggers,
    pack_clip,
    unpack_clip,
)
from loopline.apps.vision.gate import label, release_gate, score_suite
from loopline.apps.vision.scenes import PEDESTRIAN, VEHICLE, Actor, Conditions, Scenario
from loopline.edge import UploadQueue

SHAPE = (384, 640, 3)
AHEAD = [300, 250, 340, 370]  # bottom at 96 % of the height, centred: in the vehicle's path
ASIDE = [20, 250, 60, 370]  # as low, but at the left edge


def _tracks(*rows: tuple[list[float], int]) -> Tracks:
    return Tracks(
        np.arange(1, len(rows) + 1, dtype=np.int64),
        np.array([b for b, _ in rows], np.float32).reshape(-1, 4),
        np.full(len(rows), 0.9, np.float32),
        np.array([c for _, c in rows], np.int64),
    )


def _dets(*rows: tuple[list[float], float]) -> Detections:
    return Detections(
        np.array([b for b, _ in rows], np.float32).reshape(-1, 4),
        np.array([s for _, s in rows], np.float32),
        np.zeros(len(rows), np.int64),
    )


def _names(fired: list[Trigger]) -> list[str]:
    return [t.name for t in fired]


# -- triggers --------------------------------------------------------------------------------


def test_a_pedestrian_close_ahead_is_a_near_miss() -> None:
    fired = Triggers().check(5, SHAPE, _dets((AHEAD, 0.9)), _tracks((AHEAD, PEDESTRIAN)))
    assert _names(fired) == ["near-miss"]
    assert fired[0].frame == 5
    assert fired[0].priority == PRIORITY["near-miss"]
    assert "pedestrian track 1" in fired[0].why


@pytest.mark.parametrize(
    ("box", "cls"),
    [
        (AHEAD, VEHICLE),  # a vehicle, not vulnerable
        (ASIDE, PEDESTRIAN),  # outside the corridor
        ([300, 100, 340, 250], PEDESTRIAN),  # far: high in the frame
    ],
)
def test_other_tracks_are_no_near_miss(box: list[float], cls: int) -> None:
    assert Triggers().check(0, SHAPE, _dets((box, 0.9)), _tracks((box, cls))) == []


def test_a_confirmed_track_without_a_detection_is_a_disagreement() -> None:
    fired = Triggers().check(
        0, SHAPE, _dets((ASIDE, 0.9)), _tracks((ASIDE, VEHICLE), ([400, 100, 450, 140], VEHICLE))
    )
    assert _names(fired) == ["disagreement"]
    assert fired[0].why.startswith("1 track(s) without a detection, 0 sure")


def test_a_weak_detection_under_a_track_does_not_count() -> None:
    fired = Triggers().check(0, SHAPE, _dets((ASIDE, 0.1)), _tracks((ASIDE, VEHICLE)))
    assert _names(fired) == ["disagreement"]  # 0.1 is below the uncertain band


def test_a_confident_untracked_detection_is_a_disagreement() -> None:
    fired = Triggers().check(0, SHAPE, _dets((ASIDE, 0.8)), Tracks.empty())
    assert _names(fired) == ["disagreement"]
    assert "1 sure detection(s) untracked" in fired[0].why


def test_several_uncertain_detections_are_low_confidence() -> None:
    boxes = [[10 + 60 * i, 10, 50 + 60 * i, 60] for i in range(4)]
    three = _dets((boxes[0], 0.3), (boxes[1], 0.35), (boxes[2], 0.45), (boxes[3], 0.55))
    fired = Triggers().check(0, SHAPE, three, Tracks.empty())
    assert _names(fired) == ["low-confidence"]
    assert fired[0].why.startswith("3 detections")
    two = _dets((boxes[0], 0.3), (boxes[1], 0.35), (boxes[2], 0.55))
    assert Triggers().check(0, SHAPE, two, Tracks.empty()) == []


def test_each_trigger_respects_its_own_cooldown() -> None:
    triggers = Triggers(TriggerConfig(cooldown_frames=10))
    near = (_dets((AHEAD, 0.9)), _tracks((AHEAD, PEDESTRIAN)))
    lost = (Detections.empty(), _tracks((ASIDE, VEHICLE)))
    assert _names(triggers.check(0, SHAPE, *near)) == ["near-miss"]
    assert triggers.check(9, SHAPE, *near) == []
    assert _names(triggers.check(9, SHAPE, *lost)) == ["disagreement"]  # its own clock
    assert _names(triggers.check(10, SHAPE, *near)) == ["near-miss"]
    assert triggers.check(18, SHAPE, *lost) == []
    assert _names(triggers.check(19, SHAPE, *lost)) == ["disagreement"]
    assert triggers.fired == {"near-miss": 2, "disagreement": 2}


def test_a_trigger_suppressed_by_its_cooldown_does_not_restart_it() -> None:
    triggers = Triggers(TriggerConfig(cooldown_frames=10))
    lost = (Detections.empty(), _tracks((ASIDE, VEHICLE)))
    fired_at = [i for i in range(25) if triggers.check(i, SHAPE, *lost)]
    assert fired_at == [0, 10, 20]


# -- the recorder and the clip format --------------------------------------------------------


def _image(i: int) -> np.ndarray:
    """A small frame, distinct per index (its brightness)."""
    image = np.full((48, 64, 3), 10 * i, np.uint8)
    cv2.rectangle(image, (8, 8), (40, 30), (255, 255, 255), -1)
    return image


def test_the_recorder_queues_a_clip_around_a_trigger() -> None:
    queue = UploadQueue(max_items=10, max_bytes=10_000_000)
    recorder = Recorder(queue, "drive-1", before=3, after=2)
    trigger = Trigger("near-miss", 5, "a pedestrian close ahead")
    for i in range(10):
        recorder.add(i, _image(i), [trigger] if i == 5 else [])
        if i == 6:
            assert len(queue) == 0  # still recording the frames after
    assert len(queue) == 1
    (upload,) = queue.drain(budget_bytes=10_000_000)
    assert upload.priority == PRIORITY["near-miss"]
    assert upload.reason == "near-miss"
    assert upload.id == "drive-1/5/near-miss"
    clip = unpack_clip(upload.payload)
    assert clip.source == "drive-1"
    assert clip.trigger == "near-miss"
    # the 3 frames before, the trigger's own and the 2 after
    assert sorted(clip.frames) == [2, 3, 4, 5, 6, 7]
    for i, image in clip.frames.items():
        assert np.abs(image.astype(int) - _image(i).astype(int)).mean() < 3


def test_clips_are_drained_by_priority() -> None:
    queue = UploadQueue(max_items=10, max_bytes=10_000_000)
    recorder = Recorder(queue, "drive-2", before=1, after=1)
    recorder.add(0, _image(0), [Trigger("low-confidence", 0, "doubt")])
    recorder.add(1, _image(1), [Trigger("near-miss", 1, "close")])
    recorder.add(2, _image(2), [Trigger("disagreement", 2, "coasting")])
    recorder.add(3, _image(3), [])
    drained = queue.drain(budget_bytes=10_000_000)
    assert [u.reason for u in drained] == ["near-miss", "disagreement", "low-confidence"]
    frames_of = {u.reason: sorted(unpack_clip(u.payload).frames) for u in drained}
    assert frames_of == {
        "low-confidence": [0, 1],
        "near-miss": [0, 1, 2],
        "disagreement": [1, 2, 3],
    }


def test_flush_queues_a_clip_still_recording() -> None:
    queue = UploadQueue(max_items=10, max_bytes=10_000_000)
    recorder = Recorder(queue, "drive-3", before=2, after=5)
    for i in range(4):
        recorder.add(i, _image(i), [Trigger("disagreement", 2, "x")] if i == 2 else [])
    assert len(queue) == 0
    recorder.flush()
    (upload,) = queue.drain(budget_bytes=10_000_000)
    assert sorted(unpack_clip(upload.payload).frames) == [0, 1, 2, 3]
    recorder.flush()
    assert len(queue) == 0  # nothing left to queue twice


def test_pack_and_unpack_round_trip_a_clip() -> None:
    frame = next(scenes.clip(Scenario("pack", 4, frames=1))).image
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    trigger = Trigger("disagreement", 41, "1 track(s) without a detection")
    clip = unpack_clip(pack_clip("car-7", trigger, [(40, jpeg.tobytes()), (41, jpeg.tobytes())]))
    assert clip.source == "car-7"
    assert clip.trigger == "disagreement"
    assert sorted(clip.frames) == [40, 41]
    back = clip.frames[41]
    assert back.shape == frame.shape
    assert not np.array_equal(back, frame)  # JPEG is lossy...
    assert np.abs(back.astype(int) - frame.astype(int)).mean() < 4  # ...but close


def test_unpack_rejects_a_frame_that_is_not_a_jpeg() -> None:
    payload = pack_clip("car-7", Trigger("near-miss", 0, "x"), [(0, b"not an image")])
    with pytest.raises(ValueError, match=r"000000\.jpg of the clip is not a JPEG"):
        unpack_clip(payload)


# -- the release gate ------------------------------------------------------------------------


CHAMPION = {"night": 0.80, "rain": 0.60, "glare": 0.50}


def test_the_gate_passes_with_no_champion() -> None:
    gate = release_gate({"night": 0.1}, None)
    assert gate.passed
    assert gate.failed == ()
    assert "no regression" in gate.why()


def test_the_gate_passes_within_the_margin() -> None:
    candidate = {"night": 0.795, "rain": 0.70, "glare": 0.491}
    gate = release_gate(candidate, CHAMPION, margin=0.01)
    assert gate.passed
    assert gate.failed == ()


def test_the_gate_names_exactly_the_scenarios_that_regressed() -> None:
    candidate = {"night": 0.70, "rain": 0.65, "glare": 0.45}
    gate = release_gate(candidate, CHAMPION, margin=0.01)
    assert not gate.passed
    assert gate.failed == ("night", "glare")
    assert gate.why() == "regressed on night (0.700 < 0.800), glare (0.450 < 0.500)"


def test_a_scenario_the_candidate_was_not_scored_on_fails_the_gate() -> None:
    gate = release_gate({"night": 0.9, "rain": 0.9}, CHAMPION)
    assert gate.failed == ("glare",)


def test_the_margin_is_configurable() -> None:
    candidate = {"night": 0.75, "rain": 0.60, "glare": 0.50}
    assert not release_gate(candidate, CHAMPION, margin=0.01).passed
    assert release_gate(candidate, CHAMPION, margin=0.06).passed


# -- labels and scoring on the cloud side ----------------------------------------------------


STEPS_OUT = Scenario(
    "steps-out",
    9100,
    frames=8,
    conditions=Conditions(),
    density=(2, 1, 0, 1),
    scripted=(Actor(1, PEDESTRIAN, -3.0, 12.0, 1.2, -2.0),),
    ego_speed=4.0,
)


def test_label_pairs_the_uploaded_frames_with_their_ground_truth() -> None:
    truth = list(scenes.clip(STEPS_OUT))
    uploaded = {i: truth[i].image[::2, ::2].copy() for i in (2, 3, 5)}  # the clip's own frames
    labelled = label(Clip("steps-out", "near-miss", uploaded), {"steps-out": STEPS_OUT})
    assert len(labelled) == 3
    for (image, t), i in zip(labelled, (2, 3, 5), strict=True):
        assert image is uploaded[i]
        np.testing.assert_array_equal(t.boxes, truth[i].boxes)
        np.testing.assert_array_equal(t.classes, truth[i].classes)
    assert 1 in truth[3].track_ids  # the scripted pedestrian is in the labelled frames


def test_label_needs_the_scenario_the_clip_came_from() -> None:
    clip = Clip("unknown-drive", "near-miss", {0: np.zeros((4, 4, 3), np.uint8)})
    with pytest.raises(KeyError, match="unknown-drive"):
        label(clip, {"steps-out": STEPS_OUT})


def test_a_detector_that_finds_nothing_scores_zero() -> None:
    one = Scenario(
        "one", 9101, frames=5, conditions=Conditions(), density=(2, 1, 1, 1), ego_speed=5.0
    )
    calls = []

    def nothing(image: np.ndarray) -> Detections:
        calls.append(image.shape)
        return Detections.empty()

    assert score_suite(nothing, [one]) == {"one": 0.0}
    assert calls == [(384, 640, 3)] * 5
