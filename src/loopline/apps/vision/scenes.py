"""A procedural driving-scene generator with ground truth: a SIMULATOR, not real footage.

No data set of labelled driving video ships offline (docs/vision.md), so frames are drawn:
a road in perspective from a camera 1.5 m above it, vehicles in lanes, pedestrians on the
pavement or crossing, cyclists along the kerb and signs by the road, all moving in metres
per second in a world the camera drives through, and projected with a pinhole camera.
Nearer actors hide farther ones (the visible fraction of each box is computed), far ones
are small, and a clip has its own light, blur, rain and sensor noise. Every frame comes
with boxes, classes, track identities and visibilities.

A clip is a pure function of its seed (and of a :class:`Scenario`'s scripted actors), so
the same frames come back in training, tests and the release gate's fixed suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision.boxes import CLASSES

WIDTH, HEIGHT = 640, 384  # what the camera captures
FOCAL = 520.0  # pixels
CAMERA_HEIGHT = 1.5  # metres above the road
HORIZON = 0.40 * HEIGHT
FPS = 30
MIN_VISIBLE = 0.25  # a box less visible than this is not in the ground truth
MIN_HEIGHT_PX = 8

VEHICLE, PEDESTRIAN, CYCLIST, SIGN = range(4)
SIZES = {  # width, height in metres (a cyclist crossing is wider: see _size)
    VEHICLE: (1.8, 1.5),
    PEDESTRIAN: (0.55, 1.75),
    CYCLIST: (0.6, 1.75),
    SIGN: (0.7, 0.7),
}
LANES = (-5.25, -1.75, 1.75, 5.25)  # lane centres, metres right of the camera
ROAD_HALF = 7.0


@dataclass(frozen=True)
class Conditions:
    """How a clip looks: light, motion blur, rain and sensor noise."""

    brightness: float = 1.0  # gain on every pixel (night: ~0.35)
    contrast: float = 1.0
    blur: int = 0  # motion-blur kernel length in pixels (0: none)
    rain: float = 0.0  # rain streaks, 0..1
    noise: float = 2.0  # sensor noise, standard deviation in grey levels

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Conditions:
        night = rng.random() < 0.2
        return cls(
            brightness=float(rng.uniform(0.3, 0.45) if night else rng.uniform(0.75, 1.2)),
            contrast=float(rng.uniform(0.7, 1.15)),
            blur=int(rng.choice([0, 0, 0, 3, 5, 7])),
            rain=float(rng.choice([0.0, 0.0, 0.0, rng.uniform(0.2, 0.8)])),
            noise=float(rng.uniform(1.0, 6.0 if night else 3.5)),
        )


@dataclass
class Actor:
    """Something in the world: where it is (metres: ``x`` right of the camera, ``z`` ahead),
    how it moves (m/s) and how it looks."""

    track_id: int
    cls: int
    x: float
    z: float
    vx: float = 0.0
    vz: float = 0.0
    colour: tuple[int, int, int] = (128, 128, 128)
    scale: float = 1.0  # size variation


@dataclass(frozen=True)
class Frame:
    """One captured frame and what is in it."""

    index: int
    t_ms: float
    image: NDArray[np.uint8]  # (HEIGHT, WIDTH, 3) BGR
    boxes: NDArray[np.float32]  # (n, 4) x1 y1 x2 y2 in pixels
    classes: NDArray[np.int64]  # (n,)
    track_ids: NDArray[np.int64]  # (n,)
    visibility: NDArray[np.float32]  # (n,) fraction of the box not hidden


@dataclass(frozen=True)
class Scenario:
    """A clip to generate: a seed, its conditions (sampled from the seed when None), how many
    actors of each class the world keeps, and scripted actors placed at the start (the
    safety-critical suite: a pedestrian stepping out close ahead, say)."""

    name: str
    seed: int
    frames: int = 90
    conditions: Conditions | None = None
    density: tuple[int, int, int, int] = (5, 3, 2, 2)  # vehicles, pedestrians, cyclists, signs
    scripted: tuple[Actor, ...] = ()
    ego_speed: float | None = None  # m/s; sampled when None


def clip(scenario: Scenario) -> Iterator[Frame]:
    """The frames of ``scenario``, in order, at :data:`FPS`."""
    rng = np.random.default_rng(scenario.seed)
    conditions = scenario.conditions or Conditions.sample(rng)
    ego = scenario.ego_speed if scenario.ego_speed is not None else float(rng.uniform(3, 14))
    world = _World(rng, scenario.density, ego, list(scenario.scripted))
    background = _background(rng)
    dt = 1.0 / FPS
    for i in range(scenario.frames):
        yield world.render(i, i * 1000.0 / FPS, background, conditions, rng)
        world.step(dt)


def frames(seed: int, count: int, *, per_clip: int = 60) -> Iterator[Frame]:
    """``count`` frames from clips of ``per_clip`` frames, each clip with its own world and
    conditions (training and evaluation sets: different seeds, disjoint)."""
    made, k = 0, 0
    while made < count:
        n = min(per_clip, count - made)
        yield from clip(Scenario(f"set-{seed}-{k}", seed * 1_000_003 + k, frames=n))
        made, k = made + n, k + 1


def project(x: float, z: float, height_m: float, width_m: float) -> tuple[float, ...]:
    """The pixel box of an upright object standing on the road at (x, z)."""
    u = WIDTH / 2 + FOCAL * x / z
    v = HORIZON + FOCAL * CAMERA_HEIGHT / z
    w, h = FOCAL * width_m / z, FOCAL * height_m / z
    return u - w / 2, v - h, u + w / 2, v


class _World:
    def __init__(
        self, rng: np.random.Generator, density: tuple[int, ...], ego: float,
        scripted: list[Actor],
    ) -> None:  # fmt: skip
        self.rng, self.density, self.ego = rng, density, ego
        self.actors: list[Actor] = [replace(a) for a in scripted]
        self.next_id = 1 + max((a.track_id for a in scripted), default=0)
        for cls, n in enumerate(density):
            for _ in range(n):
                self.actors.append(self._spawn(cls, near=True))

    def _spawn(self, cls: int, *, near: bool) -> Actor:
        r = self.rng
        z = float(r.uniform(6, 60) if near else r.uniform(45, 65))
        red, green, blue = (int(c) for c in r.integers(30, 230, 3))
        colour = (red, green, blue)
        scale = float(r.uniform(0.85, 1.15))
        if cls == VEHICLE:
            lane = float(r.choice(LANES))
            vz = float(r.uniform(-3, 4)) if lane > 0 else -float(r.uniform(8, 18)) - self.ego
            a = Actor(0, cls, lane + float(r.normal(0, 0.2)), z, 0.0, vz, colour, scale)
        elif cls == PEDESTRIAN:
            if r.random() < 0.35:  # crossing the road
                side = float(r.choice([-1.0, 1.0]))
                x, vx = side * float(r.uniform(4, ROAD_HALF)), -side * float(r.uniform(0.8, 1.8))
                a = Actor(0, cls, x, z, vx, -self.ego, colour, scale)
            else:
                x = float(r.choice([-1.0, 1.0])) * float(r.uniform(7.5, 9.5))
                a = Actor(0, cls, x, z, 0.0, -self.ego + float(r.uniform(-1.5, 1.5)), colour, scale)
        elif cls == CYCLIST:
            x = float(r.choice([-1.0, 1.0])) * float(r.uniform(3.2, 3.8))
            vz = float(r.uniform(3, 7)) - self.ego if x > 0 else -float(r.uniform(3, 7)) - self.ego
            a = Actor(0, cls, x, z, 0.0, vz, colour, scale)
        else:
            x = float(r.choice([-1.0, 1.0])) * float(r.uniform(7.5, 9.0))
            a = Actor(0, cls, x, z, 0.0, -self.ego, colour, 1.0)
        a.track_id, self.next_id = self.next_id, self.next_id + 1
        return a

    def step(self, dt: float) -> None:
        kept = []
        for a in self.actors:
            a.x += a.vx * dt
            a.z += a.vz * dt
            if 2.5 < a.z < 75 and abs(a.x) < 14:
                kept.append(a)
            else:  # left the view: something new comes into it far ahead
                kept.append(self._spawn(a.cls, near=False))
        self.actors = kept

    def render(
        self, index: int, t_ms: float, background: NDArray[np.uint8], cond: Conditions,
        rng: np.random.Generator,
    ) -> Frame:  # fmt: skip
        img = background.copy()
        _road_marks(img, self.ego * t_ms / 1000.0)
        order = sorted(self.actors, key=lambda a: -a.z)  # far first: near ones hide them
        boxes, visible = [], []
        for a in order:
            w, h = _size(a)
            box = project(a.x, a.z, h * a.scale, w * a.scale)
            if a.cls == SIGN:  # the plate, on a pole 2.2 m tall
                top = project(a.x, a.z, 2.2 + h, w)[1]
                box = (box[0], top, box[2], top + FOCAL * h / a.z)
            _draw(img, a, box)
            boxes.append(box)
        cover = np.zeros((HEIGHT // 4, WIDTH // 4), bool)  # nearest first: what hides what
        for k in range(len(order) - 1, -1, -1):
            x1, y1, x2, y2 = (round(c / 4) for c in boxes[k])
            x1, y1 = max(x1, 0), max(y1, 0)
            x2, y2 = min(max(x2, x1 + 1), WIDTH // 4), min(max(y2, y1 + 1), HEIGHT // 4)
            cells = cover[y1:y2, x1:x2]
            seen = 1.0 - float(cells.mean()) if cells.size else 0.0
            visible.append((k, seen))
            cover[y1:y2, x1:x2] = True
        seen_of = dict(visible)
        keep_boxes, keep_cls, keep_ids, keep_vis = [], [], [], []
        for k, a in enumerate(order):
            left, top, right, bottom = boxes[k]
            clipped = (
                max(left, 0.0),
                max(top, 0.0),
                min(right, WIDTH - 1.0),
                min(bottom, HEIGHT - 1.0),
            )
            inside = (clipped[2] - clipped[0]) * (clipped[3] - clipped[1])
            whole = (right - left) * (bottom - top)
            vis = seen_of[k] * (inside / whole if whole > 0 and inside > 0 else 0.0)
            if vis >= MIN_VISIBLE and clipped[3] - clipped[1] >= MIN_HEIGHT_PX:
                keep_boxes.append(clipped)
                keep_cls.append(a.cls)
                keep_ids.append(a.track_id)
                keep_vis.append(vis)
        img = _camera(img, cond, rng)
        return Frame(
            index, t_ms, img,
            np.array(keep_boxes, np.float32).reshape(-1, 4), np.array(keep_cls, np.int64),
            np.array(keep_ids, np.int64), np.array(keep_vis, np.float32),
        )  # fmt: skip


def _size(a: Actor) -> tuple[float, float]:
    w, h = SIZES[a.cls]
    if a.cls in (PEDESTRIAN, CYCLIST) and abs(a.vx) > 0.3:
        return (1.7, h) if a.cls == CYCLIST else (0.7, h)  # seen from the side
    return w, h


def _background(rng: np.random.Generator) -> NDArray[np.uint8]:
    img = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    sky = np.array(rng.integers(150, 235, 3), np.float32)
    h = int(HORIZON)
    ramp = np.linspace(0.75, 1.0, h, dtype=np.float32)[:, None, None]
    img[:h] = np.clip(sky[None, None, :] * ramp, 0, 255).astype(np.uint8)
    grass = np.array(rng.integers(40, 120, 3), np.float32) * np.array([0.6, 1.0, 0.7], np.float32)
    img[h:] = grass.astype(np.uint8)
    asphalt = int(rng.integers(60, 110))
    far_l, far_r = project(-ROAD_HALF, 80, 0, 0)[0], project(ROAD_HALF, 80, 0, 0)[0]
    near_l, near_r = project(-ROAD_HALF, 2.0, 0, 0)[0], project(ROAD_HALF, 2.0, 0, 0)[0]
    road = np.array([[far_l, h + 1], [far_r, h + 1], [near_r, HEIGHT], [near_l, HEIGHT]], np.int32)
    cv2.fillConvexPoly(img, road, (asphalt, asphalt, asphalt + 5))
    for _ in range(int(rng.integers(3, 9))):  # buildings and trees on the horizon
        x = int(rng.integers(0, WIDTH))
        w, top = int(rng.integers(20, 90)), int(rng.integers(int(h * 0.3), h))
        shade = tuple(int(c) for c in rng.integers(60, 200, 3))
        cv2.rectangle(img, (x, top), (x + w, h), shade, -1)
    return img


def _road_marks(img: NDArray[np.uint8], travelled: float) -> None:
    """Dashed lane lines that slide towards the camera as it drives."""
    for lx in (-3.5, 0.0, 3.5):
        z = 3.0 - (travelled % 6.0)
        while z < 70:
            z0, z1 = max(z, 2.2), z + 3.0
            if z1 > 2.2:
                p0 = project(lx, z0, 0, 0.12)
                p1 = project(lx, z1, 0, 0.12)
                pts = np.array(
                    [[p0[0], p0[3]], [p0[2], p0[3]], [p1[2], p1[3]], [p1[0], p1[3]]], np.int32
                )
                cv2.fillConvexPoly(img, pts, (215, 215, 215))
            z += 6.0


def _draw(img: NDArray[np.uint8], a: Actor, box: tuple[float, ...]) -> None:
    x1, y1, x2, y2 = (round(c) for c in box)
    w, h = x2 - x1, y2 - y1
    c = a.colour
    if w < 1 or h < 1:
        return
    if a.cls == VEHICLE:
        cv2.rectangle(img, (x1, y1 + h // 3), (x2, y2 - h // 8), c, -1)  # body
        cv2.rectangle(img, (x1 + w // 6, y1), (x2 - w // 6, y1 + h // 3), c, -1)  # cabin
        cv2.rectangle(
            img, (x1 + w // 5, y1 + h // 12), (x2 - w // 5, y1 + h // 3), (60, 50, 40), -1
        )
        r = max(h // 8, 1)
        cv2.circle(img, (x1 + w // 5, y2 - r), r, (20, 20, 20), -1)  # wheels
        cv2.circle(img, (x2 - w // 5, y2 - r), r, (20, 20, 20), -1)
        cv2.rectangle(
            img,
            (x1 + 1, y1 + h // 2),
            (x1 + max(w // 8, 1), y1 + h // 2 + max(h // 10, 1)),
            (40, 40, 230),
            -1,
        )
        cv2.rectangle(
            img,
            (x2 - max(w // 8, 1), y1 + h // 2),
            (x2 - 1, y1 + h // 2 + max(h // 10, 1)),
            (40, 40, 230),
            -1,
        )
    elif a.cls == PEDESTRIAN:
        head = max(h // 8, 1)
        cv2.circle(img, ((x1 + x2) // 2, y1 + head), head, (140, 170, 210), -1)
        cv2.rectangle(img, (x1 + w // 5, y1 + 2 * head), (x2 - w // 5, y1 + h * 3 // 5), c, -1)
        leg = (60, 50, 50)
        cv2.line(img, ((x1 + x2) // 2, y1 + h * 3 // 5), (x1 + w // 4, y2), leg, max(w // 5, 1))
        cv2.line(img, ((x1 + x2) // 2, y1 + h * 3 // 5), (x2 - w // 4, y2), leg, max(w // 5, 1))
    elif a.cls == CYCLIST:
        r = max(h // 5, 1)
        cv2.circle(img, (x1 + r, y2 - r), r, (30, 30, 30), max(r // 4, 1))
        cv2.circle(img, (x2 - r, y2 - r), r, (30, 30, 30), max(r // 4, 1))
        cv2.line(img, (x1 + r, y2 - r), (x2 - r, y2 - r), (90, 90, 90), max(r // 4, 1))
        cx = (x1 + x2) // 2
        cv2.rectangle(img, (cx - w // 6, y1 + h // 6), (cx + w // 6, y2 - 2 * r), c, -1)
        cv2.circle(img, (cx, y1 + h // 12), max(h // 12, 1), (140, 170, 210), -1)
    else:
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        cv2.line(img, (cx, y2), (cx, y2 + int(h * 3.1)), (120, 120, 120), max(w // 10, 1))
        cv2.circle(img, (cx, cy), max(w // 2, 1), (30, 30, 200), -1)
        cv2.circle(img, (cx, cy), max(w * 3 // 8, 1), (240, 240, 240), -1)


def _camera(
    img: NDArray[np.uint8], cond: Conditions, rng: np.random.Generator
) -> NDArray[np.uint8]:
    out = img
    if cond.blur > 1:
        k = np.zeros((cond.blur, cond.blur), np.float32)
        k[cond.blur // 2, :] = 1.0 / cond.blur  # horizontal motion blur
        out = np.asarray(cv2.filter2D(out, -1, k), np.uint8)
    if cond.rain > 0:  # streaks, drawn then blended in: rain is translucent
        streaks = out.copy()
        for _ in range(int(300 * cond.rain)):
            x, y = int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))
            cv2.line(streaks, (x, y), (x - 3, y + 14), (200, 200, 200), 1)
        out = np.asarray(cv2.addWeighted(out, 0.35, streaks, 0.65, 0), np.uint8)
    gain = cond.contrast * cond.brightness
    f = cv2.convertScaleAbs(out, alpha=gain, beta=128.0 * (1.0 - cond.contrast) * cond.brightness)
    noise = rng.standard_normal(f.shape[:2], dtype=np.float32) * cond.noise  # one per pixel
    return np.asarray(cv2.add(f, noise[:, :, None].repeat(3, axis=2), dtype=cv2.CV_8U), np.uint8)


__all__ = [
    "CLASSES", "FPS", "HEIGHT", "WIDTH", "Actor", "Conditions", "Frame", "Scenario", "clip",
    "frames", "project",
]  # fmt: skip
