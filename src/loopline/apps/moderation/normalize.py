"""Text as a classifier should read it, with the obfuscations users hide words behind undone:
compatibility forms folded (NFKC: full-width and mathematical letters), invisible characters
removed (zero-width spaces and joiners, bidi controls, soft hyphens; not the joiners and
direction marks that Devanagari, Arabic and emoji need), look-alike letters from
other scripts mapped back to Latin inside words that mix scripts, leetspeak read as letters
inside words, and letters spread apart ("k i l l", "k.i.l.l") joined.

Each undone trick is named in :attr:`Normalized.tricks`: hiding words is itself a signal,
which the classifiers see as a feature.

The look-alike table comes from Unicode's confusables (``confusable-homoglyphs`` ships them):
every single character of another script that Unicode lists as confusable with an ASCII
letter (Latin letters such as Turkish's dotless i are letters, not disguises). It is
applied only inside a word that also holds ASCII letters, so Cyrillic or Devanagari text
is left as written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

MAX_CHARS = 4_000  # longer text is cut: the classifiers read the start of a message

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                       "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e"})  # fmt: skip
_LEET_CHARS = "0134578@$!|+€"
# leet characters inside a word ("k1ll", "h4te", "n00b", "b!tch") or opening one ("$tupid",
# "@ss"); not at its ends otherwise, so "3pm", "100$" and "wow!!!" stay as written
_LEET_RUN = re.compile(
    rf"(?<=[^\W\d_])[{re.escape(_LEET_CHARS)}]+(?=[^\W\d_])|(?<!\S)[$@](?=[^\W\d_])"
)
# three or more single letters spread by one separator: "k i l l", "k.i.l.l", "k-i-l-l"
_SPREAD = re.compile(r"(?<![^\W\d_])(?:[^\W\d_][ .\-_*]){2,}[^\W\d_](?![^\W\d_])")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Normalized:
    """The text to classify and the tricks undone to get it."""

    text: str
    tricks: tuple[str, ...]


@cache
def _lookalikes() -> dict[str, str]:
    """Character -> the ASCII letter Unicode says it is confusable with."""
    import json
    from importlib.resources import files

    table = json.loads(files("confusable_homoglyphs").joinpath("confusables.json").read_text())
    out: dict[str, str] = {}
    for letter, alikes in table.items():
        if len(letter) == 1 and letter.isascii() and letter.isalpha():
            for alike in alikes:
                c = alike["c"]
                # a letter of the Latin script itself (Turkish dotless i, say) is a letter of
                # some language, not a disguise
                if len(c) == 1 and not c.isascii() and "LATIN" not in alike["n"]:
                    out.setdefault(c, letter.lower())
    return out


def _hidden(c: str, before: str, after: str) -> bool:
    """Whether format character ``c`` hides something: zero-width joiners and non-joiners
    shape the letters of scripts such as Devanagari and Arabic and join emoji, so between
    two characters that are not ASCII they stay."""
    if unicodedata.category(c) != "Cf":
        return False
    if c in "\u200c\u200d" and before and after and not before.isascii() and not after.isascii():
        return False
    return not (c in "\u200e\u200f\u061c" and not (before + after).isascii())  # bidi marks


def _unmix(word: str, table: dict[str, str]) -> str:
    if not any(c.isascii() and c.isalpha() for c in word):
        return word
    return "".join(table.get(c, c) for c in word)


def normalize(text: str) -> Normalized:
    """``text`` folded, cleaned and de-obfuscated, lower-cased."""
    tricks: list[str] = []
    text = unicodedata.normalize("NFKC", text[:MAX_CHARS])
    visible = "".join(
        c for i, c in enumerate(text)
        if not _hidden(c, text[i - 1] if i else "", text[i + 1] if i + 1 < len(text) else "")
    )  # fmt: skip
    if len(visible) != len(text):
        tricks.append("invisible")
    text = visible.casefold()
    table = _lookalikes()
    words = text.split(" ")
    unmixed = [_unmix(w, table) for w in words]
    if unmixed != words:
        tricks.append("lookalike")
        text = " ".join(unmixed)
    leet = _LEET_RUN.sub(lambda m: m.group(0).translate(_LEET), text)
    if leet != text:
        tricks.append("leet")
        text = leet
    joined = _SPREAD.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), text)
    if joined != text:
        tricks.append("spread")
        text = joined
    return Normalized(_SPACES.sub(" ", text).strip(), tuple(tricks))
