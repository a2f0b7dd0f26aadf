"""Training the detector on generated frames, on the CPU (PyTorch).

Frames are generated once and kept at the network's input size (uint8: 184 KB each); every
batch is flipped left-right at random (roads are near symmetric; a flipped sign is still a
sign). AdamW with a one-cycle learning rate. Progress is reported every few steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import NDArray

from loopline.apps.vision import scenes
from loopline.apps.vision.boxes import CLASSES
from loopline.apps.vision.detector.evaluate import Truth
from loopline.apps.vision.detector.model import CenterNet, loss, targets
from loopline.apps.vision.preprocess import boxes_to_input, resize, to_input


@dataclass(frozen=True)
class TrainConfig:
    frames: int = 3000  # generated training frames
    seed: int = 1  # of the generated set (evaluation uses other seeds)
    width: int = 24  # scales the network's channels
    batch: int = 32
    epochs: int = 4
    lr: float = 4e-3
    threads: int = 2
    device: str = "auto"  # "cuda" where a GPU is found, else "cpu"


@dataclass
class Trained:
    model: CenterNet
    config: TrainConfig
    losses: list[float] = field(default_factory=list)  # one per step
    seconds: float = 0.0
    images_per_s: float = 0.0
    device: str = "cpu"  # where it trained (a GPU's name)


Progress = Callable[[int, int, float], None]  # step, steps, loss


def dataset(
    seed: int, count: int, *, per_clip: int = 60, frames: list[scenes.Frame] | None = None
) -> tuple[NDArray[np.uint8], list[Truth]]:
    """``count`` generated frames at the input size and their ground truth in input pixels
    (or those of ``frames`` given)."""
    made = frames if frames is not None else scenes.frames(seed, count, per_clip=per_clip)
    images, truth = [], []
    for f in made:
        images.append(resize(f.image))
        truth.append(Truth(boxes_to_input(f.boxes, f.image.shape), f.classes))
    return np.stack(images), truth


def train(
    config: TrainConfig, *, data: tuple[NDArray[np.uint8], list[Truth]] | None = None,
    init: dict[str, torch.Tensor] | None = None, progress: Progress | None = None,
) -> Trained:  # fmt: skip
    """Train a detector on ``data`` (generated from ``config`` when None), from ``init``
    weights when given (the fleet loop's fine-tuning)."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    images, truth = data if data is not None else dataset(config.seed, config.frames)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu")
        if config.device == "auto"
        else config.device
    )
    model = CenterNet(len(CLASSES), config.width)
    if init is not None:
        model.load_state_dict(init)
    model.to(device)
    steps_per_epoch = max(len(images) // config.batch, 1)
    steps = steps_per_epoch * config.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=steps, pct_start=0.15)
    rng = np.random.default_rng(config.seed)
    out = Trained(model, config)
    start, step = time.perf_counter(), 0
    model.train()
    for _ in range(config.epochs):
        order = rng.permutation(len(images))
        for b in range(steps_per_epoch):
            idx = order[b * config.batch : (b + 1) * config.batch]
            x, heat, reg, mask = (t.to(device) for t in _batch(images, truth, idx, rng))
            value, _ = loss(model(x), heat, reg, mask)
            opt.zero_grad(set_to_none=True)
            value.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sched.step()
            step += 1
            out.losses.append(value.item())
            if progress is not None and (step % 10 == 0 or step == steps):
                progress(step, steps, float(np.mean(out.losses[-10:])))
    out.seconds = time.perf_counter() - start
    out.images_per_s = steps * config.batch / out.seconds
    out.device = str(device) if device.type == "cpu" else torch.cuda.get_device_name(device)
    model.to("cpu").eval()
    return out


def _batch(
    images: NDArray[np.uint8], truth: list[Truth], idx: NDArray[np.int64], rng: np.random.Generator
) -> tuple[torch.Tensor, ...]:
    xs, heats, regs, masks = [], [], [], []
    for i in idx:
        img, t = images[i], truth[i]
        boxes = t.boxes
        if rng.random() < 0.5:
            img = img[:, ::-1]
            boxes = boxes.copy()
            boxes[:, [0, 2]] = img.shape[1] - boxes[:, [2, 0]]
        xs.append(img)
        h, r, m = targets(boxes, t.classes)
        heats.append(h)
        regs.append(r)
        masks.append(m)
    return (
        torch.from_numpy(to_input(np.stack(xs))), torch.from_numpy(np.stack(heats)),
        torch.from_numpy(np.stack(regs)), torch.from_numpy(np.stack(masks)),
    )  # fmt: skip
