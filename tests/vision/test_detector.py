"""The detector: preprocessing, decoding a synthetic network output, the training targets,
training to ONNX (FP32 and INT8) and the runtime end to end on a tiny network, COCO mAP and
true positives, temperature scaling, and the HOG baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from loopline.apps.vision import scenes
from loopline.apps.vision.boxes import CLASSES, Detections, iou
from loopline.apps.vision.detector import export
from loopline.apps.vision.detector.calibrate import ece, fit_temperature
from loopline.apps.vision.detector.decode import decode
from loopline.apps.vision.detector.evaluate import Truth, coco_map, true_positives
from loopline.apps.vision.detector.hog import HogPeople
from loopline.apps.vision.detector.model import OUT_H, OUT_W, targets
from loopline.apps.vision.detector.runner import Detector
from loopline.apps.vision.detector.train import TrainConfig, Trained, dataset, train
from loopline.apps.vision.preprocess import INPUT_H, INPUT_W, STRIDE, resize, scale_of, to_input

C = len(CLASSES)
VEHICLE, PEDESTRIAN, CYCLIST, SIGN = range(C)
BACKGROUND = -10.0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# -- preprocessing ---------------------------------------------------------------------------


def test_resize_brings_a_frame_to_the_input_size() -> None:
    frame = np.zeros((384, 640, 3), np.uint8)
    frame[:, 320:] = 200  # the right half bright
    small = resize(frame)
    assert small.shape == (INPUT_H, INPUT_W, 3)
    assert small[:, : INPUT_W // 2].max() == 0
    assert small[:, INPUT_W // 2 :].min() == 200
    assert resize(small) is small  # already the input size: untouched


def test_to_input_is_rgb_channels_first_in_unit_range() -> None:
    bgr = np.zeros((2, INPUT_H, INPUT_W, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    bgr[1, ..., 2] = 51  # a little red in the second
    x = to_input(bgr)
    assert x.shape == (2, 3, INPUT_H, INPUT_W)
    assert x.dtype == np.float32
    assert x[:, 2].min() == pytest.approx(1.0)  # blue is the last channel in RGB
    assert x[0, 0].max() == 0.0
    assert x[1, 0].min() == pytest.approx(0.2)


def test_scale_of_maps_input_pixels_to_frame_pixels() -> None:
    assert scale_of((384, 640, 3)) == (2.0, 2.0)
    assert scale_of((INPUT_H, INPUT_W, 3)) == (1.0, 1.0)


# -- decoding --------------------------------------------------------------------------------


def _output(*peaks: tuple[int, int, int, float]) -> np.ndarray:
    """A network output (C + 4, 48, 80): background logits, and at each (class, y, x, logit)
    a box of 10 x 20 cells with centre offset (0.25, 0.75)."""
    out = np.zeros((C + 4, OUT_H, OUT_W), np.float32)
    out[:C] = BACKGROUND
    for c, y, x, logit in peaks:
        out[c, y, x] = logit
        out[C:, y, x] = (math.log(10.0), math.log(20.0), 0.25, 0.75)
    return out


def test_decode_recovers_the_box_in_frame_pixels_and_the_class() -> None:
    assert (OUT_H, OUT_W) == (48, 80)
    d = decode(_output((PEDESTRIAN, 20, 30, 3.0)), classes=C, scale=(2.0, 2.0))
    assert len(d) == 1
    # centre (30.25, 20.75) cells, 10 x 20 cells; a cell is 4 input pixels, 8 frame pixels
    np.testing.assert_allclose(d.boxes[0], [202.0, 86.0, 282.0, 246.0], atol=1e-3)
    assert d.classes.tolist() == [PEDESTRIAN]
    assert d.scores[0] == pytest.approx(_sigmoid(3.0), rel=1e-6)


def test_decode_applies_the_horizontal_and_vertical_scale_separately() -> None:
    d = decode(_output((SIGN, 10, 5, 2.0)), classes=C, scale=(1.0, 3.0))
    cx, cy = 5.25 * STRIDE, 10.75 * STRIDE * 3.0
    w, h = 10 * STRIDE, 20 * STRIDE * 3.0
    np.testing.assert_allclose(
        d.boxes[0], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], atol=1e-3
    )


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_temperature_scales_the_logit(temperature: float) -> None:
    d = decode(_output((CYCLIST, 5, 60, 2.0)), classes=C, temperature=temperature)
    assert d.scores[0] == pytest.approx(_sigmoid(2.0 / temperature), rel=1e-6)


def test_a_lower_neighbour_of_a_peak_is_suppressed() -> None:
    out = _output((VEHICLE, 20, 30, 3.0))
    out[VEHICLE, 20, 31] = 2.0  # next to the peak, lower: not a peak
    out[VEHICLE, 21, 29] = 2.9
    out[PEDESTRIAN, 20, 31] = 1.0  # same cell, another class: its own peak
    d = decode(out, classes=C)
    assert sorted(zip(d.classes.tolist(), d.scores.tolist(), strict=True)) == [
        (VEHICLE, pytest.approx(_sigmoid(3.0))),
        (PEDESTRIAN, pytest.approx(_sigmoid(1.0))),
    ]


def test_two_separate_peaks_are_both_found() -> None:
    d = decode(_output((VEHICLE, 10, 10, 2.0), (VEHICLE, 10, 13, 1.5)), classes=C)
    assert len(d) == 2


def test_min_score_filters_peaks() -> None:
    out = _output((VEHICLE, 10, 10, 3.0), (SIGN, 30, 50, -1.0))  # scores 0.953 and 0.269
    assert len(decode(out, classes=C, min_score=0.05)) == 2
    assert decode(out, classes=C, min_score=0.3).classes.tolist() == [VEHICLE]
    assert len(decode(out, classes=C, min_score=0.96)) == 0
    # the threshold applies to the calibrated score: at T = 4, sigmoid(3 / 4) = 0.68
    assert len(decode(out, classes=C, min_score=0.7, temperature=4.0)) == 0


def test_decode_keeps_the_top_k() -> None:
    peaks = [(VEHICLE, 4 * i, 4 * j, 1.0 + 0.01 * (8 * i + j)) for i in range(8) for j in range(8)]
    d = decode(_output(*peaks), classes=C, top_k=5)
    assert sorted(d.scores.tolist()) == pytest.approx(
        [_sigmoid(1.0 + 0.01 * k) for k in range(59, 64)]
    )


# -- training targets ------------------------------------------------------------------------


def test_targets_mark_each_centre_with_its_size_and_offset() -> None:
    boxes = np.array([[42, 46, 87, 118], [200, 20, 240, 60]], np.float32)  # input pixels
    heat, reg, mask = targets(boxes, np.array([CYCLIST, VEHICLE]))
    assert heat.shape == (C, OUT_H, OUT_W)
    # first box in cells: (10.5, 11.5, 21.75, 29.5), centre (16.125, 20.5), 11.25 x 18
    assert heat[CYCLIST, 20, 16] == 1.0
    np.testing.assert_allclose(reg[:, 20, 16], [math.log(11.25), math.log(18.0), 0.125, 0.5])
    # second: (50, 5, 60, 15), centre (55, 10), 10 x 10
    assert heat[VEHICLE, 10, 55] == 1.0
    np.testing.assert_allclose(reg[:, 10, 55], [math.log(10.0), math.log(10.0), 0.0, 0.0])
    # exactly one 1.0 per object, in its own class only
    assert (heat == 1.0).sum() == 2
    assert heat[PEDESTRIAN].max() == 0.0
    assert mask.sum() == 2
    assert mask[20, 16] == 1.0
    assert mask[10, 55] == 1.0
    # the Gaussian falls off around the centre
    assert 0.0 < heat[CYCLIST, 20, 17] < 1.0
    assert heat[CYCLIST, 20, 17] > heat[CYCLIST, 20, 19]


def test_targets_skip_a_box_too_small_to_have_a_centre() -> None:
    boxes = np.array([[100, 100, 100.5, 140], [10, 10, 30, 30]], np.float32)
    heat, _, mask = targets(boxes, np.array([PEDESTRIAN, SIGN]))
    assert mask.sum() == 1
    assert heat[PEDESTRIAN].max() == 0.0


def test_targets_of_an_empty_frame_are_empty() -> None:
    heat, reg, mask = targets(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    assert heat.max() == 0.0
    assert reg.max() == 0.0
    assert mask.sum() == 0.0


# -- training, export and the runtime, on a tiny network -------------------------------------


@dataclass(frozen=True)
class Exported:
    trained: Trained
    images: np.ndarray  # the training frames at the input size
    fp32: Path
    int8: Path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """A tiny detector trained for one epoch on 48 frames, exported to FP32 and INT8."""
    config = TrainConfig(frames=48, epochs=1, batch=8, width=8)
    images, truth = dataset(config.seed, config.frames)
    trained = train(config, data=(images, truth))
    folder = tmp_path_factory.mktemp("detector")
    fp32 = export.to_onnx(trained.model, folder / "fp32.onnx")
    int8 = export.quantize(fp32, folder / "int8.onnx", images[:8])
    return Exported(trained, images, fp32, int8)


def test_training_runs_with_a_finite_falling_loss(exported: Exported) -> None:
    losses = exported.trained.losses
    assert len(losses) == 48 // 8
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0]
    assert not exported.trained.model.training  # left in eval mode


def test_the_fp32_export_matches_pytorch(exported: Exported) -> None:
    x = to_input(exported.images[40:42])
    with torch.no_grad():
        expected = exported.trained.model(torch.from_numpy(x)).numpy()
    runner = Detector(exported.fp32)
    got = np.concatenate([runner.raw(x[i : i + 1]) for i in range(2)])
    assert got.shape == (2, C + 4, OUT_H, OUT_W)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_the_int8_model_is_quantized(exported: Exported) -> None:
    ops = {node.op_type for node in onnx.load(str(exported.int8)).graph.node}
    assert "QLinearConv" in ops or {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert not exported.int8.with_suffix(".prep.onnx").exists()  # its scratch file removed


def test_the_int8_heatmaps_follow_the_fp32_ones(exported: Exported) -> None:
    x = to_input(exported.images[44:45])
    fp32 = Detector(exported.fp32).raw(x)[0, :C].ravel()
    int8 = Detector(exported.int8).raw(x)[0, :C].ravel()
    assert not np.array_equal(fp32, int8)  # really another model
    assert np.corrcoef(fp32, int8)[0, 1] > 0.9


def test_the_detector_returns_boxes_in_frame_pixels(exported: Exported) -> None:
    frame = next(scenes.clip(scenes.Scenario("runtime", 77, frames=1))).image
    runner = Detector(exported.fp32, min_score=1e-3)
    on_frame = runner(frame)
    on_input = runner(resize(frame))  # the same network input, boxes in input pixels
    assert len(on_frame) > 0
    np.testing.assert_array_equal(on_frame.classes, on_input.classes)
    np.testing.assert_allclose(on_frame.scores, on_input.scores)
    np.testing.assert_allclose(on_frame.boxes, 2.0 * on_input.boxes, rtol=1e-6, atol=1e-4)
    # peaks all over the frame: centres beyond the input's width, as far as the frame's
    cx = (on_frame.boxes[:, 0] + on_frame.boxes[:, 2]) / 2
    assert cx.max() > INPUT_W
    assert cx.max() < scenes.WIDTH + STRIDE


# -- evaluation ------------------------------------------------------------------------------


def _truths() -> list[Truth]:
    return [
        Truth(
            np.array([[10, 20, 60, 120], [200, 50, 300, 130], [400, 60, 430, 150]], np.float32),
            np.array([PEDESTRIAN, VEHICLE, PEDESTRIAN]),
        ),
        Truth(
            np.array([[100, 100, 180, 160], [500, 30, 540, 110]], np.float32),
            np.array([VEHICLE, CYCLIST]),
        ),
    ]


def _perfect(t: Truth, keep: np.ndarray | None = None) -> Detections:
    d = Detections(
        t.boxes.copy(), np.linspace(0.9, 0.6, len(t.boxes)).astype(np.float32), t.classes.copy()
    )
    return d if keep is None else d.take(keep)


def test_perfect_detections_score_one() -> None:
    truth = _truths()
    q = coco_map(truth, [_perfect(t) for t in truth])
    assert q.map50 == pytest.approx(1.0)
    assert q.map50_95 == pytest.approx(1.0)
    assert q.ap50 == {
        "vehicle": pytest.approx(1.0),
        "pedestrian": pytest.approx(1.0),
        "cyclist": pytest.approx(1.0),
        "sign": 0.0,
    }


def test_detections_off_by_half_a_box_score_zero_at_iou_one_half() -> None:
    truth = _truths()
    found = []
    for t in truth:
        d = _perfect(t)
        shift = (d.boxes[:, 2] - d.boxes[:, 0]) / 2  # IoU 1/3
        found.append(
            Detections(
                d.boxes + np.stack([shift, 0 * shift, shift, 0 * shift], 1), d.scores, d.classes
            )
        )
    q = coco_map(truth, found)
    assert q.map50 == 0.0
    assert q.map50_95 == 0.0


def test_classes_restricts_the_evaluation() -> None:
    truth = _truths()
    only_people = [_perfect(t, t.classes == PEDESTRIAN) for t in truth]
    assert coco_map(truth, only_people).map50 < 0.5  # vehicles and cyclists missed
    q = coco_map(truth, only_people, classes=[PEDESTRIAN])
    assert q.map50 == pytest.approx(1.0)
    assert set(q.ap50) == {"pedestrian"}


def test_no_detections_score_zero_and_no_truth_is_an_error() -> None:
    truth = _truths()
    assert coco_map(truth, [Detections.empty(), Detections.empty()]).map50 == 0.0
    with pytest.raises(ValueError, match="no ground-truth boxes"):
        coco_map(truth, [Detections.empty()] * 2, classes=[SIGN])


def test_true_positives_match_greedily_by_score() -> None:
    truth = Truth(np.array([[0, 0, 100, 100]], np.float32), np.array([PEDESTRIAN]))
    found = Detections(
        np.array([[0, 0, 100, 100], [0, 0, 100, 65]], np.float32),  # exact; IoU 0.65
        np.array([0.5, 0.9], np.float32),
        np.array([PEDESTRIAN, PEDESTRIAN]),
    )
    # the surer one takes the only true box though the other fits it better
    assert true_positives(truth, found).tolist() == [False, True]


def test_true_positives_match_each_truth_once() -> None:
    truth = Truth(
        np.array([[0, 0, 100, 100], [200, 0, 300, 100]], np.float32), np.array([VEHICLE, VEHICLE])
    )
    found = Detections(
        np.array([[0, 0, 100, 100], [2, 0, 102, 100], [200, 0, 300, 100]], np.float32),
        np.array([0.9, 0.8, 0.7], np.float32),
        np.array([VEHICLE, VEHICLE, VEHICLE]),
    )
    assert true_positives(truth, found).tolist() == [True, False, True]


def test_true_positives_never_match_across_classes() -> None:
    truth = Truth(
        np.array([[0, 0, 100, 100], [0, 0, 100, 100]], np.float32), np.array([PEDESTRIAN, CYCLIST])
    )
    found = Detections(
        np.array([[0, 0, 100, 100]] * 3, np.float32),
        np.array([0.9, 0.8, 0.7], np.float32),
        np.array([VEHICLE, CYCLIST, SIGN]),
    )
    assert true_positives(truth, found).tolist() == [False, True, False]
    assert true_positives(truth, found, threshold=0.5).sum() == 1
    assert true_positives(truth, Detections.empty()).tolist() == []


def test_true_positives_respect_the_threshold() -> None:
    truth = Truth(np.array([[0, 0, 100, 100]], np.float32), np.array([SIGN]))
    found = Detections(
        np.array([[0, 0, 100, 60]], np.float32), np.array([0.9], np.float32), np.array([SIGN])
    )
    assert true_positives(truth, found, threshold=0.5).tolist() == [True]
    assert true_positives(truth, found, threshold=0.7).tolist() == [False]


# -- calibration -----------------------------------------------------------------------------


def test_fit_temperature_recovers_the_temperature_and_lowers_the_ece() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 4.0, 5000).astype(np.float32)
    y = rng.random(5000) < 1.0 / (1.0 + np.exp(-z / 2.5))
    cal = fit_temperature(z, y)
    assert cal.temperature == pytest.approx(2.5, rel=0.1)
    assert cal.ece_after < cal.ece_before
    assert cal.ece_after < 0.03
    assert cal.detections == 5000


def test_fit_temperature_needs_enough_samples_of_both_outcomes() -> None:
    z = np.linspace(-3, 3, 19).astype(np.float32)
    with pytest.raises(ValueError, match="too few"):
        fit_temperature(z, z > 0)
    many = np.linspace(-3, 3, 100).astype(np.float32)
    with pytest.raises(ValueError, match="one outcome only"):
        fit_temperature(many, np.ones(100, bool))


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    p = np.array([0.25] * 4 + [0.75] * 4)
    assert ece(p, np.array([1, 0, 0, 0, 1, 1, 1, 0], np.float64)) == pytest.approx(0.0)
    assert ece(p, np.array([0, 0, 0, 0, 1, 1, 1, 1], np.float64)) == pytest.approx(0.25)


# -- the HOG baseline ------------------------------------------------------------------------


def _road(*actors: scenes.Actor) -> np.ndarray:
    """A clear daytime frame with only ``actors`` on the road."""
    scenario = scenes.Scenario(
        "hog", 3, frames=1, conditions=scenes.Conditions(), density=(0, 0, 0, 0),
        scripted=actors, ego_speed=0.0,
    )  # fmt: skip
    return next(scenes.clip(scenario)).image


def test_hog_finds_a_large_pedestrian() -> None:
    x, z = 0.5, 6.0
    image = _road(scenes.Actor(1, scenes.PEDESTRIAN, x, z, colour=(40, 40, 160)))
    expected = np.array([scenes.project(x, z, 1.75, 0.55)], np.float32)
    assert expected[0, 3] - expected[0, 1] > 140  # about 150 px tall
    d = HogPeople()(image)
    assert isinstance(d, Detections)
    assert len(d) >= 1
    assert (d.classes == PEDESTRIAN).all()
    assert d.boxes.dtype == np.float32
    assert iou(d.boxes, expected).max() > 0.4


def test_hog_finds_nobody_on_an_empty_road() -> None:
    d = HogPeople()(_road())
    assert len(d) == 0
    assert d.boxes.shape == (0, 4)
