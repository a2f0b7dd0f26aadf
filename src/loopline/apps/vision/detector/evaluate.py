"""Detection quality with COCO's own evaluation (pycocotools): mAP at IoU 0.5 and averaged
over 0.5:0.95, on frames with ground truth; and which detections are true positives (for
calibration and the fleet's triggers)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision.boxes import CLASSES, Detections, iou


@dataclass(frozen=True)
class Truth:
    """The ground truth of one frame."""

    boxes: NDArray[np.float32]
    classes: NDArray[np.int64]


@dataclass(frozen=True)
class Quality:
    map50: float
    map50_95: float
    ap50: dict[str, float]  # per class


def coco_map(
    truth: Sequence[Truth], found: Sequence[Detections], classes: Sequence[int] | None = None
) -> Quality:
    """COCO's mAP of ``found`` against ``truth`` (one entry per frame), over ``classes``
    (all by default). Boxes of the other classes are left out of both sides."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    wanted = list(range(len(CLASSES))) if classes is None else list(classes)
    images: list[dict[str, int]] = []
    annotations: list[dict[str, object]] = []
    results: list[dict[str, object]] = []
    for i, (t, d) in enumerate(zip(truth, found, strict=True)):
        images.append({"id": i})
        for b, c in zip(t.boxes, t.classes, strict=True):
            if c in wanted:
                w, h = float(b[2] - b[0]), float(b[3] - b[1])
                annotations.append({
                    "id": len(annotations) + 1, "image_id": i, "category_id": int(c),
                    "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h, "iscrowd": 0,
                })  # fmt: skip
        for b, s, c in zip(d.boxes, d.scores, d.classes, strict=True):
            if c in wanted:
                box = [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
                results.append(
                    {"image_id": i, "category_id": int(c), "bbox": box, "score": float(s)}
                )
    if not annotations:
        raise ValueError("no ground-truth boxes of the classes asked for")
    gt = COCO()
    gt.dataset = {
        "images": images, "annotations": annotations,
        "categories": [{"id": c, "name": CLASSES[c]} for c in wanted],
    }  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt.createIndex()
        if not results:
            return Quality(0.0, 0.0, {CLASSES[c]: 0.0 for c in wanted})
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.maxDets = [1, 10, 100]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_class = {}
    precision = ev.eval["precision"]  # (iou, recall, class, area, maxdets)
    for k, c in enumerate(ev.params.catIds):
        p = precision[0, :, k, 0, -1]
        per_class[CLASSES[c]] = float(p[p > -1].mean()) if (p > -1).any() else 0.0
    return Quality(float(max(ev.stats[1], 0.0)), float(max(ev.stats[0], 0.0)), per_class)


def true_positives(truth: Truth, found: Detections, threshold: float = 0.5) -> NDArray[np.bool_]:
    """Which of ``found`` match a true box of their class at IoU >= ``threshold``, greedily
    by score (each true box matched once): COCO's rule at one threshold."""
    hit = np.zeros(len(found), bool)
    if len(found) == 0 or len(truth.boxes) == 0:
        return hit
    overlap = iou(found.boxes, truth.boxes)
    overlap[found.classes[:, None] != truth.classes[None, :]] = 0.0
    taken = np.zeros(len(truth.boxes), bool)
    for i in np.argsort(-found.scores):
        candidates = np.where(taken, 0.0, overlap[i])
        j = int(np.argmax(candidates))
        if candidates[j] >= threshold:
            hit[i], taken[j] = True, True
    return hit
