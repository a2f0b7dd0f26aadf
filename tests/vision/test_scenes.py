"""The driving-scene simulator: clips are a pure function of their seed, the ground truth is
well formed (boxes in the frame, ids stable and unique, visibility a fraction), nearer
actors hide farther ones, night is darker and the camera projects with perspective."""

from __future__ import annotations

from collections import defaultdict

import cv2
import numpy as np
import pytest

from loopline.apps.vision import scenes
from loopline.apps.vision.scenes import (
    HEIGHT,
    MIN_VISIBLE,
    PEDESTRIAN,
    VEHICLE,
    WIDTH,
    Actor,
    Conditions,
    Frame,
    Scenario,
    project,
)

EMPTY = (0, 0, 0, 0)
CLEAR = Conditions(noise=0.0)
NIGHT = Conditions(brightness=0.35, contrast=0.8, noise=5.0)


def _one_frame(*actors: Actor, conditions: Conditions = CLEAR, seed: int = 3) -> Frame:
    scenario = Scenario(
        "scripted",
        seed,
        frames=1,
        conditions=conditions,
        density=EMPTY,
        scripted=actors,
        ego_speed=0.0,
    )
    return next(scenes.clip(scenario))


def _visibility_of(frame: Frame, track_id: int) -> float:
    """The visibility of ``track_id`` in ``frame`` (0 when it is not in the ground truth)."""
    found = dict(zip(frame.track_ids.tolist(), frame.visibility.tolist(), strict=True))
    return float(found.get(track_id, 0.0))


@pytest.fixture(scope="module")
def busy_clips() -> list[list[Frame]]:
    """Two default clips (the world's own actors, sampled conditions) of 45 frames."""
    return [list(scenes.clip(Scenario(f"busy-{s}", s, frames=45))) for s in (11, 12)]


def test_the_same_seed_gives_the_same_clip() -> None:
    a = list(scenes.clip(Scenario("a", 7, frames=12)))
    b = list(scenes.clip(Scenario("b", 7, frames=12)))
    for fa, fb in zip(a, b, strict=True):
        np.testing.assert_array_equal(fa.image, fb.image)
        np.testing.assert_array_equal(fa.boxes, fb.boxes)
        np.testing.assert_array_equal(fa.classes, fb.classes)
        np.testing.assert_array_equal(fa.track_ids, fb.track_ids)
        np.testing.assert_array_equal(fa.visibility, fb.visibility)
    other = next(scenes.clip(Scenario("c", 8, frames=1)))
    assert not np.array_equal(a[0].image, other.image)


def test_frames_have_the_camera_shape_and_clock() -> None:
    clip = list(scenes.clip(Scenario("clock", 2, frames=4)))
    assert [f.index for f in clip] == [0, 1, 2, 3]
    assert [f.t_ms for f in clip] == pytest.approx([0.0, 1000 / 30, 2000 / 30, 3000 / 30])
    for f in clip:
        assert f.image.shape == (HEIGHT, WIDTH, 3)
        assert f.image.dtype == np.uint8
        assert f.boxes.shape == (len(f.classes), 4)


def test_frames_makes_count_frames_from_several_clips() -> None:
    made = list(scenes.frames(5, 7, per_clip=3))
    assert [f.index for f in made] == [0, 1, 2, 0, 1, 2, 0]


def test_boxes_lie_inside_the_frame(busy_clips: list[list[Frame]]) -> None:
    boxes = np.concatenate([f.boxes for clip in busy_clips for f in clip])
    assert len(boxes) > 100  # the worlds are populated
    x1, y1, x2, y2 = boxes.T
    assert (x1 >= 0).all()
    assert (y1 >= 0).all()
    assert (x2 <= WIDTH - 1).all()
    assert (y2 <= HEIGHT - 1).all()
    assert (x2 > x1).all()
    assert (y2 > y1).all()


def test_track_ids_are_unique_within_a_frame(busy_clips: list[list[Frame]]) -> None:
    for clip in busy_clips:
        for f in clip:
            assert len(set(f.track_ids.tolist())) == len(f.track_ids)


def test_a_track_id_keeps_its_class_across_the_clip(busy_clips: list[list[Frame]]) -> None:
    for clip in busy_clips:
        classes_of: defaultdict[int, set[int]] = defaultdict(set)
        for f in clip:
            for tid, cls in zip(f.track_ids.tolist(), f.classes.tolist(), strict=True):
                classes_of[tid].add(cls)
        assert all(len(c) == 1 for c in classes_of.values()), classes_of


def test_a_scripted_actor_keeps_its_id_while_it_moves() -> None:
    walker = Actor(4, PEDESTRIAN, -1.0, 12.0, vx=0.6, vz=-1.0)
    scenario = Scenario(
        "walk", 1, frames=20, conditions=CLEAR, density=EMPTY, scripted=(walker,), ego_speed=0.0
    )
    clip = list(scenes.clip(scenario))
    assert all(f.track_ids.tolist() == [4] for f in clip)
    right_edges = [float(f.boxes[0, 2]) for f in clip]
    assert right_edges == sorted(right_edges)  # it walks to the right...
    assert right_edges[-1] - right_edges[0] > 10  # ...and does move
    bottoms = [float(f.boxes[0, 3]) for f in clip]
    assert bottoms == sorted(bottoms)  # and nearer, so lower in the frame


def test_visibility_is_at_least_the_minimum(busy_clips: list[list[Frame]]) -> None:
    vis = np.concatenate([f.visibility for clip in busy_clips for f in clip])
    assert vis.min() >= MIN_VISIBLE


def test_visibility_is_at_most_one(busy_clips: list[list[Frame]]) -> None:
    vis = np.concatenate([f.visibility for clip in busy_clips for f in clip])
    assert vis.max() <= 1.0


def test_an_actor_alone_has_its_projected_box_fully_visible() -> None:
    frame = _one_frame(Actor(1, PEDESTRIAN, 0.0, 14.0))
    expected = project(0.0, 14.0, 1.75, 0.55)  # about (309.8, 144.3, 330.2, 209.3)
    np.testing.assert_allclose(frame.boxes[0], expected, atol=0.5)
    assert frame.visibility[0] == pytest.approx(1.0)


def test_a_nearer_actor_lowers_the_visibility_of_the_one_it_covers() -> None:
    pedestrian = Actor(1, PEDESTRIAN, 0.0, 14.0)
    car = Actor(2, VEHICLE, 0.0, 10.0)  # straight in front of the pedestrian
    alone = _one_frame(pedestrian)
    behind = _one_frame(pedestrian, car)
    assert _visibility_of(alone, 1) >= MIN_VISIBLE
    # Mostly hidden: less visible than alone, or below MIN_VISIBLE and out of the truth.
    assert _visibility_of(behind, 1) < 0.5 * _visibility_of(alone, 1)
    # The car in front is not hidden by what is behind it.
    assert _visibility_of(behind, 2) == pytest.approx(_visibility_of(_one_frame(car), 2), rel=0.02)


def test_an_actor_beside_another_is_not_hidden() -> None:
    pedestrian = Actor(1, PEDESTRIAN, 4.0, 14.0)
    car = Actor(2, VEHICLE, -3.0, 10.0)  # nearer, but well to the left
    assert _visibility_of(_one_frame(pedestrian, car), 1) == pytest.approx(
        _visibility_of(_one_frame(pedestrian), 1), rel=1e-6
    )


def test_night_is_darker_than_day() -> None:
    actors = (Actor(1, VEHICLE, 1.75, 15.0, colour=(200, 60, 60)), Actor(2, PEDESTRIAN, -5, 9))

    def luminance(conditions: Conditions) -> float:
        image = _one_frame(*actors, conditions=conditions, seed=21).image
        return float(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).mean())

    day, night = luminance(Conditions()), luminance(NIGHT)
    assert night < 0.6 * day


def test_project_puts_a_farther_object_higher_and_smaller() -> None:
    near = project(1.0, 8.0, 1.75, 0.55)
    far = project(1.0, 24.0, 1.75, 0.55)
    assert far[3] < near[3]  # its foot is higher in the image (nearer the horizon)
    assert far[3] > scenes.HORIZON  # but still below it
    assert far[2] - far[0] == pytest.approx((near[2] - near[0]) / 3)
    assert far[3] - far[1] == pytest.approx((near[3] - near[1]) / 3)


def test_project_centres_an_object_straight_ahead() -> None:
    x1, y1, x2, y2 = project(0.0, 10.0, 2.0, 1.0)
    assert (x1 + x2) / 2 == pytest.approx(WIDTH / 2)
    assert y2 == pytest.approx(scenes.HORIZON + scenes.FOCAL * scenes.CAMERA_HEIGHT / 10.0)
    assert y2 - y1 == pytest.approx(scenes.FOCAL * 2.0 / 10.0)
