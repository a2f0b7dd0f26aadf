"""The network and its training targets and loss (PyTorch).

CenterNet ("Objects as Points", Zhou et al. 2019) without anchors or NMS: each class has a
heatmap of object centres at stride 4; at a centre, two channels give the box's size (log
of width and height in output cells) and two its sub-pixel offset. A small backbone of
plain 3x3 convolutions (they quantize to INT8 well, unlike depthwise ones) at strides 4 to
16 after a space-to-depth stem, and a top-down path back to stride 4. Output: one tensor
(n, C + 4, H/4, W/4): class logits, log sizes, offsets.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional

from loopline.apps.vision.boxes import CLASSES
from loopline.apps.vision.preprocess import INPUT_H, INPUT_W, STRIDE

OUT_H, OUT_W = INPUT_H // STRIDE, INPUT_W // STRIDE


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class CenterNet(nn.Module):
    """The detector. ``width`` scales every layer's channels.

    The stem folds each 4x4 patch of the image into 48 channels (space-to-depth, YOLOv5's
    "Focus" layer) instead of two strided convolutions on 3 channels: measured with ONNX
    Runtime on one core, a 3-channel convolution gains little from INT8, and the folded
    stem took the whole network's INT8 speedup from 2.45x to 2.56x at width 24 (2.72x to
    2.80x at 32); width 16 reached only 1.89x (too few channels per INT8 kernel).
    """

    def __init__(self, classes: int = len(CLASSES), width: int = 24) -> None:
        super().__init__()
        w = width
        self.classes = classes
        self.stem = nn.Sequential(_conv(3 * STRIDE * STRIDE, 2 * w), _conv(2 * w, 2 * w))  # /4
        self.down8 = nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w))
        self.down16 = nn.Sequential(
            _conv(4 * w, 6 * w, 2), _conv(6 * w, 6 * w), _conv(6 * w, 6 * w)
        )
        self.lat8 = nn.Conv2d(4 * w, 6 * w, 1)
        self.up8 = _conv(6 * w, 4 * w)
        self.lat4 = nn.Conv2d(2 * w, 4 * w, 1)
        self.up4 = _conv(4 * w, 2 * w)
        self.head = _conv(2 * w, 2 * w)
        self.out = nn.Conv2d(2 * w, classes + 4, 1)
        bias = self.out.bias
        assert bias is not None
        nn.init.constant_(bias[:classes], -math.log((1 - 0.01) / 0.01))  # a prior of 0.01
        nn.init.zeros_(bias[classes:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c4 = self.stem(functional.pixel_unshuffle(x, STRIDE))
        c8 = self.down8(c4)
        c16 = self.down16(c8)
        p8 = self.up8(functional.interpolate(c16, scale_factor=2.0, mode="nearest") + self.lat8(c8))
        p4 = self.up4(functional.interpolate(p8, scale_factor=2.0, mode="nearest") + self.lat4(c4))
        return self.out(self.head(p4))  # type: ignore[no-any-return]


def targets(
    boxes: NDArray[np.float32], classes: NDArray[np.int64], n_classes: int = len(CLASSES)
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """The training targets of one image from its boxes in input pixels: Gaussian heatmaps
    (C, H, W), the regression targets (4, H, W: log w, log h, dx, dy in cells) and their
    mask (H, W)."""
    heat = np.zeros((n_classes, OUT_H, OUT_W), np.float32)
    reg = np.zeros((4, OUT_H, OUT_W), np.float32)
    mask = np.zeros((OUT_H, OUT_W), np.float32)
    ys, xs = np.mgrid[0:OUT_H, 0:OUT_W].astype(np.float32)
    for (x1, y1, x2, y2), c in zip(boxes / STRIDE, classes, strict=True):
        w, h = x2 - x1, y2 - y1
        if w <= 0.2 or h <= 0.2:
            continue
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ix, iy = min(int(cx), OUT_W - 1), min(int(cy), OUT_H - 1)
        sigma = max(_radius(h, w), 0.0) / 3 + 0.5
        g = np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma * sigma))
        np.maximum(heat[c], g, out=heat[c])
        reg[:, iy, ix] = (math.log(w), math.log(h), cx - ix, cy - iy)
        mask[iy, ix] = 1.0
    return heat, reg, mask


def _radius(h: float, w: float, overlap: float = 0.7) -> float:
    """CenterNet's Gaussian radius: how far a centre may be off for a box of this size to
    still overlap the true one by ``overlap`` (the smallest of its three cases)."""
    b1, c1 = h + w, w * h * (1 - overlap) / (1 + overlap)
    r1 = (b1 + math.sqrt(b1 * b1 - 4 * c1)) / 2
    b2, c2 = 2 * (h + w), (1 - overlap) * w * h
    r2 = (b2 + math.sqrt(b2 * b2 - 16 * c2)) / 2
    a3, b3, c3 = 4 * overlap, -2 * overlap * (h + w), (overlap - 1) * w * h
    r3 = (b3 + math.sqrt(b3 * b3 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def loss(
    out: torch.Tensor, heat: torch.Tensor, reg: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """CenterNet's penalty-reduced focal loss on the heatmaps plus L1 on sizes and offsets
    at the centres."""
    c = heat.shape[1]
    logits = out[:, :c]
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    neg_weight = torch.pow(1 - heat, 4)
    pos_loss = torch.log(p) * torch.pow(1 - p, 2) * pos
    neg_loss = torch.log(1 - p) * torch.pow(p, 2) * neg_weight * (1 - pos)
    n_pos = pos.sum().clamp(min=1.0)
    focal = -(pos_loss.sum() + neg_loss.sum()) / n_pos
    m = mask.unsqueeze(1)
    n = mask.sum().clamp(min=1.0)
    size = (functional.l1_loss(out[:, c : c + 2] * m, reg[:, :2] * m, reduction="sum")) / n
    offset = (functional.l1_loss(out[:, c + 2 :] * m, reg[:, 2:] * m, reduction="sum")) / n
    total = focal + 0.5 * size + offset
    parts = {"focal": focal.item(), "size": size.item(), "offset": offset.item()}
    return total, parts
