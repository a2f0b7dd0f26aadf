"""A video as what moderation looks at: a few frames spread over its length (the image
checks run on each) and its sound track as 16 kHz mono (speech to text runs on it).

One pass over the container with PyAV decodes both streams; frames between the sampled times
are decoded (a video's frames depend on each other) but never converted, and once the last
sample is taken the video packets are skipped. The container's claimed length is checked
before decoding and the decoded length while decoding: both are bounded.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from loopline.apps.moderation.media import MAX_SIDE, OPEN_OPTIONS, RATE, Resampler

if TYPE_CHECKING:
    import av

# 4K UHD: a bigger frame is refused before its first decode
MAX_FRAME_PIXELS = 3840 * 2160


@dataclass(frozen=True)
class Clip:
    """The sampled frames (RGB ``HxWx3``) at ``times_s``, the sound (16 kHz mono, empty if
    the video has none) and the length in seconds."""

    frames: list[NDArray[np.uint8]]
    times_s: list[float]
    audio: NDArray[np.float32]
    duration_s: float


def demux(
    data: bytes, *, every_s: float = 1.0, max_frames: int = 16, max_seconds: float = 600
) -> Clip:
    """One frame every ``every_s`` seconds, at most ``max_frames`` (a longer video has them
    spread evenly over its whole length), and the audio track, of an MP4, MKV/WebM or AVI.

    Raises:
        ValueError: the bytes are not a video PyAV decodes, it has no video stream, its
            frames are over 4K, or it is longer than ``max_seconds``.
    """
    import av

    if every_s <= 0 or max_frames < 1:
        raise ValueError(
            f"demux needs every_s > 0 and max_frames >= 1. Got {every_s}, {max_frames}."
        )
    if not data:
        raise ValueError("The video is empty (0 bytes).")
    try:
        with av.open(io.BytesIO(data), mode="r", options=OPEN_OPTIONS) as container:
            return _read(container, every_s, max_frames, max_seconds)
    except av.FFmpegError as e:
        raise ValueError(f"The video could not be decoded ({e}).") from None


def _read(
    container: av.container.InputContainer, every_s: float, max_frames: int, max_seconds: float
) -> Clip:
    import av

    if not container.streams.video:
        raise ValueError(f"The {container.format.name} file has no video stream.")
    video = container.streams.video[0]
    pixels = video.codec_context.width * video.codec_context.height
    if pixels > MAX_FRAME_PIXELS:
        raise ValueError(f"The video's frames have {pixels:,} pixels; the limit is 4K UHD.")
    claimed = container.duration / 1e6 if container.duration else None
    if claimed is not None and claimed > max_seconds:
        raise ValueError(f"The video lasts {claimed:.0f} s; the limit is {max_seconds:g} s.")
    sampler = _Sampler(_targets(claimed, every_s, max_frames), max_seconds)
    resampler = Resampler(max_seconds=max_seconds)
    for packet in container.demux(video, *container.streams.audio[:1]):
        if packet.stream is video and sampler.done:
            continue  # every sample taken: only the sound is still needed
        for frame in packet.decode():
            if isinstance(frame, av.AudioFrame):
                resampler.add(frame)
            elif isinstance(frame, av.VideoFrame):
                sampler.add(frame)
    if not sampler.frames:
        raise ValueError("The video has no frame that decodes.")
    sound = resampler.samples()
    duration = max(claimed or 0.0, sampler.last, sound.size / RATE)
    return Clip(frames=sampler.frames, times_s=sampler.times, audio=sound, duration_s=duration)


class _Sampler:
    """Keeps the first decoded frame at or after each target time."""

    def __init__(self, targets: list[float], max_seconds: float) -> None:
        self.targets = targets
        self.max_seconds = max_seconds
        self.frames: list[NDArray[np.uint8]] = []
        self.times: list[float] = []
        self.last = 0.0

    @property
    def done(self) -> bool:
        return len(self.frames) == len(self.targets)

    def add(self, frame: av.VideoFrame) -> None:
        self.last = float(frame.time or 0.0)
        if self.last > self.max_seconds:
            raise ValueError(f"The video is longer than the limit of {self.max_seconds:g} s.")
        if not self.done and self.last >= self.targets[len(self.frames)] - 1e-3:
            scale = min(1.0, MAX_SIDE / max(frame.width, frame.height))  # kept small
            width, height = max(2, round(frame.width * scale)), max(2, round(frame.height * scale))
            rgb = frame.to_ndarray(format="rgb24", width=width, height=height)
            self.frames.append(np.asarray(rgb, dtype=np.uint8))
            self.times.append(self.last)


def _targets(duration: float | None, every_s: float, max_frames: int) -> list[float]:
    """The times to sample: every ``every_s`` from 0, or, when that would be more than
    ``max_frames``, ``max_frames`` times evenly over the length. An unknown length is
    sampled every ``every_s`` up to ``max_frames``."""
    if duration is None:
        return [i * every_s for i in range(max_frames)]
    step = max(every_s, duration / max_frames)
    count = max(1, min(max_frames, math.ceil(duration / step - 1e-9)))
    return [i * step for i in range(count)]
