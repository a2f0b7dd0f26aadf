"""Media in and out: decoding what users upload (images, audio, video containers) into
arrays under size limits, encoding arrays back into files, and synthesising the evaluation
set's media (text drawn over meme-like backgrounds, speech from espeak-ng, MP4 clips).

Every upload is hostile: bytes that do not decode, a format outside the allowed demuxers, or
more pixels or seconds than allowed raise :class:`ValueError` with what was wrong, before the
expensive part where the header tells (an image's size is read before its pixels). Images are
RGB ``uint8`` arrays ``HxWx3``; audio is 16 kHz mono ``float32`` in [-1, 1].

The decoders (OpenCV, PyAV) are imported inside the functions, so importing this module
costs only numpy.
"""

from __future__ import annotations

import functools
import io
import re
import subprocess
import warnings
import wave
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import av
    from PIL import ImageFont

MAX_SIDE = 1024  # pixels: OCR reads at most 960, the classifier 224
RATE = 16_000  # Hz: what Whisper and every audio path here expect
FONTS = "/usr/share/fonts/truetype/dejavu/"
# The demuxers an upload may use (ffmpeg names): no playlists (hls, concat), no image2
# patterns, nothing that opens a second file; and no protocol for nested opens at all.
DEMUXERS = "wav,mp3,ogg,flac,aac,mov,matroska,avi"
OPEN_OPTIONS = {"format_whitelist": DEMUXERS, "protocol_whitelist": "none"}
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*")
_SPEAK_TIMEOUT_S = 30.0


def render_text_image(
    text: str, *, seed: int = 0, size: tuple[int, int] = (384, 256)
) -> NDArray[np.uint8]:
    """``text`` drawn, wrapped and sized to fit, over a seeded meme-like background
    (gradient, blurred noise or shapes), white on a black outline or the reverse, so OCR
    reads it on any background. ``size`` is (width, height); returns RGB ``HxWx3``.

    DejaVu Sans covers Latin, Greek, Cyrillic and Arabic (shaped by Raqm); not Devanagari.
    """
    from PIL import Image, ImageDraw

    width, height = size
    if width < 32 or height < 32:
        raise ValueError(f"render_text_image needs a size of at least 32x32. Got {size}.")
    rng = np.random.default_rng(seed)
    canvas = Image.fromarray(_background(rng, width, height))
    bold = bool(rng.integers(2))
    font, lines = _fit(text, bold, int(width * 0.92), int(height * 0.9))
    ascent, descent = font.getmetrics()
    step = int((ascent + descent) * 1.1)
    block = step * len(lines)
    top = int(rng.choice([0.05 * height, (height - block) / 2, 0.95 * height - block]))
    fill, outline = ("white", "black") if rng.random() < 0.7 else ("black", "white")
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text(
            (width / 2, max(0, top) + i * step),
            line,
            font=font,
            fill=fill,
            anchor="ma",
            stroke_width=max(2, font.size // 12),
            stroke_fill=outline,
        )
    pixels: NDArray[np.uint8] = np.array(canvas, dtype=np.uint8)
    return pixels


def _background(rng: np.random.Generator, width: int, height: int) -> NDArray[np.uint8]:
    from PIL import Image, ImageDraw, ImageFilter

    style = int(rng.integers(3))
    if style == 0:  # a linear gradient between two colours at a random angle
        angle = rng.uniform(0, np.pi)
        y, x = np.indices((height, width), dtype=np.float32)
        t = x * np.cos(angle) + y * np.sin(angle)
        t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
        c0, c1 = rng.integers(0, 256, (2, 3)).astype(np.float32)
        blend = c0 * (1 - t[..., None]) + c1 * t[..., None] + rng.normal(0, 6, (height, width, 3))
        gradient: NDArray[np.uint8] = np.clip(blend, 0, 255).astype(np.uint8)
        return gradient
    if style == 1:  # coarse colour noise, smoothed up, with grain
        coarse = rng.integers(0, 256, (height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 10, (height, width, 3))
        return np.clip(pixels, 0, 255).astype(np.uint8)
    image = Image.new("RGB", (width, height), tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(6, 16))):  # shapes, as on a poster or a screenshot
        x0, x1 = sorted(rng.integers(-width // 4, width + width // 4, 2).tolist())
        y0, y1 = sorted(rng.integers(-height // 4, height + height // 4, 2).tolist())
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1 + 1, y1 + 1), fill=colour)
    blurred = image.filter(ImageFilter.GaussianBlur(1.5))
    return np.asarray(blurred, dtype=np.uint8).copy()


def _fit(
    text: str, bold: bool, max_width: int, max_height: int
) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """The largest font (from a quarter of the height down to 10 px) at which ``text``,
    wrapped at word boundaries, fits the box; at the smallest, what overflows is cut."""
    size = max(10, max_height // 4)
    while True:
        font = _font(bold, size)
        lines = _wrap(text, font, max_width)
        ascent, descent = font.getmetrics()
        tall = int((ascent + descent) * 1.1) * len(lines)
        wide = max((font.getlength(line) for line in lines), default=0.0)
        if (tall <= max_height and wide <= max_width) or size == 10:
            return font, lines
        size = max(10, int(size * 0.9))


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if line and font.getlength(candidate) > max_width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


@functools.lru_cache(maxsize=64)
def _font(bold: bool, size: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(FONTS + name, size)


def encode_image(rgb: NDArray[np.uint8], fmt: str = ".png") -> bytes:
    """An RGB ``HxWx3`` image as a file of the format ``fmt`` names (".png", ".jpg", ...)."""
    import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"encode_image takes RGB uint8 HxWx3. Got {rgb.dtype} {rgb.shape}.")
    ok, buffer = cv2.imencode(fmt, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"OpenCV could not encode an image as {fmt!r}.")
    return buffer.tobytes()


def image_size(data: bytes, *, max_pixels: int = 16_000_000) -> tuple[int, int]:
    """An uploaded image's width and height, from its header alone: more than
    ``max_pixels`` is refused before a pixel is decoded (a decompression bomb costs
    nothing)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ValueError("The image is empty (0 bytes).")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as header:  # lazy: reads the header only
                width, height = header.size
        except UnidentifiedImageError:
            raise ValueError("The bytes are not an image in a format Pillow knows.") from None
        except Image.DecompressionBombError as e:
            raise ValueError(f"The image has too many pixels ({e}).") from None
        except OSError as e:
            raise ValueError(f"The image's header is damaged ({e}).") from None
    if width * height > max_pixels:
        raise ValueError(
            f"The image has {width}x{height} = {width * height:,} pixels; the limit is "
            f"{max_pixels:,}. Send it smaller."
        )
    return width, height


def decode_image(
    data: bytes, *, max_pixels: int = 16_000_000, max_side: int = MAX_SIDE
) -> NDArray[np.uint8]:
    """An uploaded image as RGB ``HxWx3`` (an animation's first frame), no longer than
    ``max_side`` on its longer side (shrunk: no reader looks closer): decoded by OpenCV, or
    by Pillow for the formats OpenCV lacks, once :func:`image_size` has checked its size."""
    import cv2
    from PIL import Image

    image_size(data, max_pixels=max_pixels)
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is not None:
        return _shrunk(np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8), max_side)
    try:  # a format OpenCV lacks (ICO, PCX, ...), or a damaged file
        with Image.open(io.BytesIO(data)) as image:
            return _shrunk(np.asarray(image.convert("RGB"), dtype=np.uint8), max_side)
    except (OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"The image could not be decoded ({e}).") from None


def _shrunk(rgb: NDArray[np.uint8], max_side: int) -> NDArray[np.uint8]:
    import cv2

    scale = max_side / max(rgb.shape[:2])
    if scale >= 1:
        return rgb
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def speak(text: str, language: str) -> NDArray[np.float32]:
    """``text`` spoken by espeak-ng's voice for ``language`` (ISO 639-1, or an espeak
    voice such as "en-us"), as 16 kHz mono. Robotic, but real speech for Whisper."""
    if not _LANGUAGE.fullmatch(language):
        raise ValueError(f"speak needs a language code such as 'en' or 'pt-br'. Got {language!r}.")
    try:
        done = subprocess.run(
            ["espeak-ng", "-v", language, "--stdout"],
            input=text.encode(),
            capture_output=True,
            timeout=_SPEAK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ValueError(
            f"espeak-ng took over {_SPEAK_TIMEOUT_S:.0f} s; shorten the text."
        ) from None
    if done.returncode != 0 or not done.stdout:
        reason = done.stderr.decode(errors="replace").strip()
        raise ValueError(f"espeak-ng cannot speak {language!r}: {reason or 'no output'}")
    return decode_audio(done.stdout)  # espeak's 22,050 Hz resampled like any upload


def encode_wav(samples: NDArray[np.float32], rate: int = RATE) -> bytes:
    """Mono samples in [-1, 1] as a 16-bit PCM WAV file (what is outside is clipped)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(pcm.tobytes())
    return out.getvalue()


def decode_audio(data: bytes, *, max_seconds: float = 600) -> NDArray[np.float32]:
    """An uploaded sound (WAV, MP3, Ogg, FLAC, or the audio track of an MP4/MKV/AVI) as
    16 kHz mono; decoding stops with a ValueError once it passes ``max_seconds``."""
    import av

    if not data:
        raise ValueError("The audio is empty (0 bytes).")
    try:
        with av.open(io.BytesIO(data), mode="r", options=OPEN_OPTIONS) as container:
            if not container.streams.audio:
                raise ValueError(f"The {container.format.name} file has no audio stream.")
            resampler = Resampler(max_seconds=max_seconds)
            for frame in container.decode(container.streams.audio[0]):
                resampler.add(frame)
            return resampler.samples()
    except av.FFmpegError as e:
        raise ValueError(f"The audio could not be decoded ({e}).") from None


class Resampler:
    """Decoded audio frames in, 16 kHz mono ``float32`` out, refused (ValueError) as soon
    as they pass ``max_seconds``: a container's claimed length is not trusted."""

    def __init__(self, *, max_seconds: float) -> None:
        import av

        self.max_seconds = max_seconds
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        self._parts: list[NDArray[np.float32]] = []
        self._total = 0

    def add(self, frame: av.AudioFrame | None) -> None:
        """One decoded frame (``None`` flushes what the resampler holds)."""
        for out in self._resampler.resample(frame):
            part = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            self._parts.append(part)
            self._total += part.size
            if self._total > self.max_seconds * RATE:
                raise ValueError(f"The audio is longer than the limit of {self.max_seconds:g} s.")

    def samples(self) -> NDArray[np.float32]:
        """Everything added, flushed."""
        self.add(None)
        return np.concatenate(self._parts) if self._parts else np.zeros(0, dtype=np.float32)


def make_video(
    frames: Sequence[NDArray[np.uint8]],
    audio: NDArray[np.float32] | None,
    fps: float = 2.0,
) -> bytes:
    """An MP4 of RGB ``frames`` (H.264, ``fps`` frames a second) with 16 kHz mono
    ``audio`` as AAC, written in memory. Frames must share one size (odd sizes lose their
    last row or column: H.264's 4:2:0 needs even ones)."""
    import av

    shapes = sorted({f.shape for f in frames})
    if len(shapes) != 1 or len(shapes[0]) != 3 or shapes[0][2] != 3 or min(shapes[0][:2]) < 2:
        raise ValueError(f"make_video needs RGB frames of one size, 2x2 or more. Got {shapes}.")
    if fps <= 0:
        raise ValueError(f"make_video's fps must be positive. Got {fps}.")
    height, width = (shapes[0][0] // 2) * 2, (shapes[0][1] // 2) * 2
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = None if audio is None else container.add_stream("aac", rate=RATE, layout="mono")
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(frame[:height, :width]), format="rgb24"
            )
            container.mux(video.encode(picture))
        container.mux(video.encode(None))
        if sound is not None and audio is not None:
            _write_audio(container, sound, audio)
    return out.getvalue()


def _write_audio(
    container: av.container.OutputContainer, stream: av.AudioStream, audio: NDArray[np.float32]
) -> None:
    import av

    size = 1024  # AAC's frame
    samples = np.clip(audio.astype(np.float32), -1.0, 1.0)
    for start in range(0, samples.size, size):
        chunk = samples[start : start + size]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        frame.rate, frame.pts = RATE, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
