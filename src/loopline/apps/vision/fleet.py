"""The fleet data loop, on the vehicle: triggers that pick the moments worth a labeller's
time, and a recorder that turns each into a clip queued for upload by priority.

Three triggers, most urgent first:

- *near miss*: a pedestrian or cyclist tracked close ahead, in the vehicle's path (the
  bottom of its box low in the frame, its centre in the middle third);
- *disagreement*: the detector and the tracker disagree: a confirmed track with no
  detection under it (the tracker coasts on what the detector lost) or a confident
  detection no track took (``tracks`` are every confirmed track the tracker holds:
  :meth:`~loopline.apps.vision.tracking.ByteTracker.held`);
- *low confidence*: several detections in the uncertain band of scores.

Each trigger fires at most once per ``cooldown_frames`` (a long scene of doubt is one
clip, not thirty). A clip is the ``before`` frames kept in a bounded ring plus the
``after`` frames that follow, JPEG-encoded (what a vehicle would send), and goes to the
:class:`~loopline.edge.uploads.UploadQueue` with its trigger's priority; the queue sends
what the link's budget allows, most urgent first.
"""

from __future__ import annotations

import collections
import io
import zipfile
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from loopline.apps.vision.boxes import CLASSES, Detections, Tracks, iou
from loopline.edge import Upload, UploadQueue

PRIORITY = {"near-miss": 3, "disagreement": 2, "low-confidence": 1}
VULNERABLE = (CLASSES.index("pedestrian"), CLASSES.index("cyclist"))


@dataclass(frozen=True)
class TriggerConfig:
    uncertain: tuple[float, float] = (0.25, 0.5)  # the band of doubtful scores
    min_uncertain: int = 3  # that many doubtful detections in a frame: low confidence
    confident: float = 0.6  # a detection this sure should be tracked
    near_bottom: float = 0.80  # a box whose bottom is below this fraction of the height...
    corridor: tuple[float, float] = (1 / 3, 2 / 3)  # ...and centre in this band is near
    cooldown_frames: int = 60


@dataclass(frozen=True)
class Trigger:
    name: str
    frame: int
    why: str

    @property
    def priority(self) -> int:
        return PRIORITY[self.name]


class Triggers:
    """Decides, frame by frame, whether this moment should go to the labellers."""

    def __init__(self, config: TriggerConfig | None = None) -> None:
        self.config = config or TriggerConfig()
        self._last: dict[str, int] = {}
        self.fired: collections.Counter[str] = collections.Counter()

    def check(
        self, frame: int, shape: tuple[int, ...], dets: Detections, tracks: Tracks
    ) -> list[Trigger]:
        c = self.config
        found: list[Trigger] = []
        h, w = shape[0], shape[1]
        for box, cls, tid in zip(tracks.boxes, tracks.classes, tracks.ids, strict=True):
            cx = (box[0] + box[2]) / 2 / w
            if (
                cls in VULNERABLE
                and box[3] / h > c.near_bottom
                and c.corridor[0] < cx < c.corridor[1]
            ):
                found.append(Trigger("near-miss", frame, f"{CLASSES[cls]} track {tid} close ahead"))
                break
        sure = dets.take(dets.scores >= c.uncertain[0])
        overlap = iou(tracks.boxes, sure.boxes)
        coasting = int((overlap.max(axis=1, initial=0.0) < 0.3).sum()) if len(tracks) else 0
        confident = sure.scores >= c.confident
        orphans = (
            int((confident & (overlap.max(axis=0, initial=0.0) < 0.3)).sum()) if len(sure) else 0
        )
        if coasting or orphans:
            why = f"{coasting} track(s) without a detection, {orphans} sure detection(s) untracked"
            found.append(Trigger("disagreement", frame, why))
        doubtful = int(((dets.scores >= c.uncertain[0]) & (dets.scores < c.uncertain[1])).sum())
        if doubtful >= c.min_uncertain:
            found.append(
                Trigger("low-confidence", frame, f"{doubtful} detections scored in {c.uncertain}")
            )
        fired = []
        for t in found:
            if frame - self._last.get(t.name, -(10**9)) >= c.cooldown_frames:
                self._last[t.name] = frame
                self.fired[t.name] += 1
                fired.append(t)
        return fired


@dataclass
class _Pending:
    trigger: Trigger
    frames: list[tuple[int, bytes]]
    until: int


@dataclass
class Recorder:
    """Keeps the last ``before`` frames (bounded), and on a trigger records a clip of them
    and the ``after`` frames that follow, then queues it for upload. ``source`` names
    where the frames come from (the cloud side finds their labels by it)."""

    queue: UploadQueue
    source: str
    before: int = 15
    after: int = 15
    quality: int = 80  # JPEG
    _ring: collections.deque[tuple[int, bytes]] = field(init=False)
    _pending: list[_Pending] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._ring = collections.deque(maxlen=self.before)

    def add(self, index: int, image: NDArray[np.uint8], triggers: list[Trigger]) -> None:
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise ValueError("the frame could not be encoded")
        item = (index, jpeg.tobytes())
        for p in self._pending:
            p.frames.append(item)
        for t in triggers:
            self._pending.append(_Pending(t, [*self._ring, item], index + self.after))
        self._ring.append(item)
        done = [p for p in self._pending if index >= p.until]
        self._pending = [p for p in self._pending if index < p.until]
        for p in done:
            self._queue(p)

    def flush(self) -> None:
        """Queue the clips still recording (the drive ended)."""
        for p in self._pending:
            self._queue(p)
        self._pending = []

    def _queue(self, p: _Pending) -> None:
        payload = pack_clip(self.source, p.trigger, p.frames)
        uid = f"{self.source}/{p.trigger.frame}/{p.trigger.name}"
        self.queue.put(Upload(id=uid, priority=p.trigger.priority, size=len(payload),
                              reason=p.trigger.name, payload=payload))  # fmt: skip


def pack_clip(source: str, trigger: Trigger, frames: list[tuple[int, bytes]]) -> bytes:
    """A clip as one zip: ``clip.txt`` (source, trigger, frame numbers) and a JPEG per
    frame."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        header = f"{source}\n{trigger.name}\n{trigger.frame}\n{trigger.why}\n"
        z.writestr("clip.txt", header)
        for index, jpeg in frames:
            z.writestr(f"{index:06d}.jpg", jpeg)
    return out.getvalue()


@dataclass(frozen=True)
class Clip:
    source: str
    trigger: str
    frames: dict[int, NDArray[np.uint8]]


def unpack_clip(payload: bytes) -> Clip:
    """The frames of a clip made by :func:`pack_clip` (the cloud side)."""
    with zipfile.ZipFile(io.BytesIO(payload)) as z:
        source, trigger, *_ = z.read("clip.txt").decode().split("\n")
        frames = {}
        for name in z.namelist():
            if name.endswith(".jpg"):
                image = cv2.imdecode(np.frombuffer(z.read(name), np.uint8), cv2.IMREAD_COLOR)
                if image is None:
                    raise ValueError(f"{name} of the clip is not a JPEG image")
                frames[int(name[:-4])] = np.asarray(image, np.uint8)
    return Clip(source, trigger, frames)
