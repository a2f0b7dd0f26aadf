"""Media decoding, encoding and synthesis (images, speech, MP4), and the keyframes and sound
of a video, on real OpenCV, Pillow, espeak-ng and PyAV."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from loopline.apps.moderation.media import (
    RATE,
    decode_audio,
    decode_image,
    encode_image,
    encode_wav,
    make_video,
    render_text_image,
    speak,
)
from loopline.apps.moderation.video import demux


def _tone(seconds: float, rate: int = RATE, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_a_rendered_image_is_seeded_sized_and_shows_the_text() -> None:
    image = render_text_image("Hello there, friend", seed=3)
    assert image.shape == (256, 384, 3)
    assert image.dtype == np.uint8
    assert np.array_equal(image, render_text_image("Hello there, friend", seed=3))
    assert not np.array_equal(image, render_text_image("Hello there, friend", seed=4))
    blank = render_text_image("", seed=3)
    assert np.abs(image.astype(int) - blank).mean() > 5  # the text covers a good part
    assert render_text_image("wide", size=(200, 100)).shape == (100, 200, 3)
    with pytest.raises(ValueError, match="32x32"):
        render_text_image("x", size=(8, 8))


def test_images_round_trip_and_bad_bytes_are_refused_with_the_reason() -> None:
    image = render_text_image("round trip", seed=1)
    assert np.array_equal(decode_image(encode_image(image)), image)
    jpeg = decode_image(encode_image(image, ".jpg"))
    assert jpeg.shape == image.shape
    other = render_text_image("round trip", seed=2)
    assert np.abs(jpeg.astype(int) - image).mean() < np.abs(other.astype(int) - image).mean() / 4
    png = encode_image(image)
    with pytest.raises(ValueError, match="empty"):
        decode_image(b"")
    with pytest.raises(ValueError, match="not an image"):
        decode_image(b"GIF? no, just text" * 10)
    with pytest.raises(ValueError, match="image could not be decoded"):
        decode_image(png[: len(png) // 2])
    icon = io.BytesIO()
    Image.fromarray(image[:, :256]).save(icon, "ICO", sizes=[(32, 32)])  # OpenCV lacks ICO
    assert decode_image(icon.getvalue()).shape == (32, 32, 3)
    big = encode_image(np.zeros((2000, 1000, 3), np.uint8))  # 2 Mpx in a few kB
    with pytest.raises(ValueError, match="2,000,000 pixels"):
        decode_image(big, max_pixels=1_000_000)


def test_speech_is_16_khz_mono_and_an_unknown_voice_is_refused() -> None:
    samples = speak("This is a short test of the moderation service.", "en")
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert 1.5 < samples.size / RATE < 6  # a sentence, at speaking pace
    assert np.sqrt(np.mean(samples**2)) > 0.02  # not silence
    assert speak("Hola", "es").size > 0
    with pytest.raises(ValueError, match="cannot speak"):
        speak("hello", "xx")
    with pytest.raises(ValueError, match="language code"):
        speak("hello", "--help")


def test_audio_decodes_resampled_to_16_khz_and_bounded() -> None:
    tone = _tone(1.0)
    back = decode_audio(encode_wav(tone))
    assert np.abs(back - tone).max() < 1e-3
    eight_khz = decode_audio(encode_wav(_tone(2.0, rate=8000), rate=8000))
    assert abs(eight_khz.size - 2 * RATE) < 100
    with pytest.raises(ValueError, match=r"longer than the limit of 0\.5 s"):
        decode_audio(encode_wav(tone), max_seconds=0.5)
    with pytest.raises(ValueError, match="could not be decoded"):
        decode_audio(bytes(range(256)) * 20)
    with pytest.raises(ValueError, match="empty"):
        decode_audio(b"")


def test_a_video_round_trips_through_mp4_frames_and_sound() -> None:
    frames = [render_text_image(f"frame {i}", seed=i) for i in range(6)]
    sound = _tone(3.0)
    data = make_video(frames, sound, fps=2.0)
    assert data[4:8] == b"ftyp"
    clip = demux(data)
    assert clip.times_s == [0.0, 1.0, 2.0]
    assert [f.shape for f in clip.frames] == [(256, 384, 3)] * 3
    for frame, original in zip(clip.frames, frames[::2], strict=True):
        assert np.abs(frame.astype(int) - original).mean() < 8
    assert abs(clip.duration_s - 3.0) < 0.1
    assert abs(clip.audio.size / RATE - 3.0) < 0.1
    assert np.corrcoef(clip.audio[1000:40000], sound[1000:40000])[0, 1] > 0.5
    assert np.abs(decode_audio(data)[: sound.size] - clip.audio[: sound.size]).max() < 1e-6


def test_a_long_video_is_sampled_over_its_whole_length() -> None:
    shades = np.linspace(0, 255, 40).astype(np.uint8)
    video = make_video([np.full((64, 96, 3), shade, np.uint8) for shade in shades], None, fps=4.0)
    clip = demux(video, every_s=1.0, max_frames=4)
    assert clip.times_s == [0.0, 2.5, 5.0, 7.5]
    assert [int(f.mean()) for f in clip.frames] == pytest.approx(shades[::10], abs=3)
    assert clip.audio.size == 0
    assert len(demux(video, every_s=0.5).frames) == 16
    with pytest.raises(ValueError, match="lasts 10 s; the limit is 5 s"):
        demux(video, max_seconds=5)


def test_what_is_not_a_video_is_refused() -> None:
    with pytest.raises(ValueError, match="no video stream"):
        demux(encode_wav(_tone(0.5)))
    with pytest.raises(ValueError, match="could not be decoded"):
        demux(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    with pytest.raises(ValueError, match="empty"):
        demux(b"")
    with pytest.raises(ValueError, match="one size"):
        make_video([np.zeros((64, 64, 3), np.uint8), np.zeros((32, 32, 3), np.uint8)], None)
