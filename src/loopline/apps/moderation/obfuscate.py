"""The tricks users hide words behind, as attacks for the evaluation set's adversarial
variants: leetspeak ("k1ll"), look-alike letters from another script (a Cyrillic "a", U+0430, in a
Latin word), invisible characters inside words (zero-width space, non-joiner, joiner, word
joiner), and letters spread apart ("k i l l", "k.i.l.l").

Each attack rewrites some of a message's words, at least one, and is a pure function of the
text and a random generator (numpy's ``Generator`` or the standard library's ``Random``):
the same seed gives the same variant. A text the attack has nothing to work on comes back
unchanged (Devanagari has no leetspeak), and the evaluation set leaves that variant out.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable
from functools import partial
from typing import Final

import numpy as np

Rng = np.random.Generator | random.Random

# A letter -> what may stand for it (one character, drawn). Latin, and the Cyrillic
# substitutions Russian speakers use (0 for о, 3 for з, 6 for б, 4 for ч).
LEET: Final[dict[str, str]] = {
    "a": "4@", "b": "8", "e": "3", "g": "9", "i": "1!", "l": "1", "o": "0", "s": "5$", "t": "7",
    "\u0430": "4@", "\u0431": "6", "\u0437": "3", "\u043e": "0", "\u0447": "4",
}  # fmt: skip

# A letter -> its look-alikes in another script. Latin letters become Cyrillic or Greek
# ones; Cyrillic letters become Latin ones; Arabic yeh and kaf become their Persian forms
# (the same shapes inside a word).
HOMOGLYPHS: Final[dict[str, str]] = {
    "a": "\u0430", "c": "\u0441", "e": "\u0435", "i": "\u0456", "j": "\u0458",
    "o": "\u043e\u03bf", "p": "\u0440", "s": "\u0455", "v": "\u03bd", "x": "\u0445",
    "y": "\u0443", "A": "\u0410\u0391", "B": "\u0412\u0392", "C": "\u0421",
    "E": "\u0415\u0395", "H": "\u041d\u0397", "I": "\u0406\u0399", "K": "\u041a\u039a",
    "M": "\u041c\u039c", "O": "\u041e\u039f", "P": "\u0420\u03a1", "T": "\u0422\u03a4",
    "X": "\u0425\u03a7",
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y",
    "\u0445": "x", "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K", "\u041c": "M",
    "\u041d": "H", "\u041e": "O", "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0425": "X",
    "\u064a": "\u06cc", "\u0649": "\u06cc", "\u0643": "\u06a9",
}  # fmt: skip

ZERO_WIDTH: Final = ("\u200b", "\u200c", "\u200d", "\u2060")
SEPARATORS: Final = (" ", ".", "-", "*", "_")
_VIRAMA = "\u094d"  # Devanagari: joins the next consonant into a conjunct
SHARE = 0.5  # of a message's words that leetspeak, homoglyphs and zero-width rewrite


def _below(rng: Rng, n: int) -> int:
    return int(rng.integers(n)) if isinstance(rng, np.random.Generator) else rng.randrange(n)


def _pick(rng: Rng, options: str | tuple[str, ...]) -> str:
    return options[_below(rng, len(options))]


def _sample(rng: Rng, population: list[int], k: int) -> list[int]:
    """``k`` of ``population``, drawn without replacement (a partial Fisher-Yates)."""
    pool = list(population)
    for i in range(k):
        j = i + _below(rng, len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return sorted(pool[:k])


def _is_word(token: str) -> bool:
    """A word worth hiding: three letters or more, and not a link."""
    return sum(c.isalpha() for c in token) >= 3 and "/" not in token


def _rewrite(
    text: str,
    rng: Rng,
    words: int | float,
    eligible: Callable[[str], bool],
    change: Callable[[str, Rng], str],
) -> str:
    """``text`` with ``change`` applied to some of its eligible words: ``words`` of them
    (an int), or that share of them (a float), and at least one."""
    tokens = text.split(" ")
    candidates = [i for i, token in enumerate(tokens) if _is_word(token) and eligible(token)]
    if not candidates:
        return text
    k = words if isinstance(words, int) else round(words * len(candidates))
    for i in _sample(rng, candidates, min(max(1, k), len(candidates))):
        tokens[i] = change(tokens[i], rng)
    return " ".join(tokens)


def _substitute(word: str, rng: Rng, table: dict[str, str], key: Callable[[str], str]) -> str:
    """About half of ``word``'s characters that ``table`` knows replaced, at least one."""
    positions = [i for i, c in enumerate(word) if key(c) in table]
    chosen = [i for i in positions if _below(rng, 2)] or [positions[_below(rng, len(positions))]]
    chars = list(word)
    for i in chosen:
        chars[i] = _pick(rng, table[key(word[i])])
    return "".join(chars)


def leet(text: str, rng: Rng) -> str:
    """Letters in half the words written as digits and symbols: "h4t3", "k1ll"."""
    return _rewrite(
        text,
        rng,
        SHARE,
        lambda w: any(c.lower() in LEET for c in w),
        lambda w, r: _substitute(w, r, LEET, str.lower),
    )


def homoglyphs(text: str, rng: Rng) -> str:
    """Letters in half the words swapped for look-alikes from another script."""
    return _rewrite(
        text,
        rng,
        SHARE,
        lambda w: any(c in HOMOGLYPHS for c in w),
        lambda w, r: _substitute(w, r, HOMOGLYPHS, str),
    )


def _gaps(word: str) -> list[int]:
    """Where an invisible character leaves ``word`` looking the same: between two letters
    (a letter's marks before it), and not after a virama, which would break a conjunct."""
    return [
        i
        for i in range(1, len(word))
        if word[i].isalpha()
        and unicodedata.category(word[i - 1])[0] in "LM"
        and word[i - 1] != _VIRAMA
    ]


def _insert_invisible(word: str, rng: Rng) -> str:
    gaps = _gaps(word)
    for i in reversed(_sample(rng, gaps, 2 if len(gaps) >= 5 else 1)):
        word = word[:i] + _pick(rng, ZERO_WIDTH) + word[i:]
    return word


def zero_width(text: str, rng: Rng) -> str:
    """Invisible characters (U+200B, U+200C, U+200D, U+2060) inside half the words."""
    return _rewrite(text, rng, SHARE, lambda w: bool(_gaps(w)), _insert_invisible)


def _clusters(text: str) -> list[str]:
    """``text`` cut into what a reader sees as letters: a vowel sign or other mark stays
    with its letter, and a Devanagari conjunct (consonant, virama, consonant) stays whole."""
    out: list[str] = []
    for c in text:
        if out and (unicodedata.category(c)[0] == "M" or out[-1].endswith(_VIRAMA)):
            out[-1] += c
        else:
            out.append(c)
    return out


def _letters(word: str) -> tuple[int, int]:
    """Where ``word``'s letters start and end, its punctuation left outside."""
    letters = [i for i, c in enumerate(word) if c.isalpha()]
    end = letters[-1] + 1
    while end < len(word) and unicodedata.category(word[end])[0] == "M":
        end += 1  # the last letter's vowel signs belong to it
    return letters[0], end


def _spread(word: str, rng: Rng) -> str:
    start, end = _letters(word)
    middle = _pick(rng, SEPARATORS).join(_clusters(word[start:end]))
    return word[:start] + middle + word[end:]


def _spreadable(word: str, letters: int) -> bool:
    return len(_clusters(word[slice(*_letters(word))])) >= letters


def spacing(text: str, rng: Rng) -> str:
    """The letters of one word (two in a long message) spread apart: "k i l l", "k.i.l.l".
    Words of four letters or more are picked first (the content words)."""
    words = 2 if len(text.split()) >= 12 else 1
    for letters in (4, 3):
        spread = _rewrite(text, rng, words, partial(_spreadable, letters=letters), _spread)
        if spread != text:
            return spread
    return text


# The adversarial variants, by the name items carry in ``Item.variant``.
VARIANTS: Final[dict[str, Callable[[str, Rng], str]]] = {
    "leet": leet,
    "homoglyphs": homoglyphs,
    "zero_width": zero_width,
    "spacing": spacing,
}
