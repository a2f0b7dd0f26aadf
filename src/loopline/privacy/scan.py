"""Primary account numbers (PANs) in text and bytes: the Luhn check (ISO/IEC 7812), a scan,
and redaction.

PCI DSS 3.3-3.5 asks that no PAN is stored in clear anywhere. Identifiers, idempotency
keys and dead letters come from callers, so the platform checks them: an identifier that
is a Luhn-valid 13-19 digit run is refused, and a dead letter's raw bytes are stored with
every such run masked.
"""

from __future__ import annotations

import re

_PAN = re.compile(r"^[0-9]{13,19}$")
# 13-19 digits standing alone: not inside a longer digit run, not the fraction of a decimal
# number (0.8035052576083381) and not inside a word such as a hex trace id
# (...7f4551879113593a...): what a PAN scan looks for
PAN_IN_TEXT = re.compile(r"(?<![0-9A-Za-z.])[0-9]{13,19}(?![0-9A-Za-z])")
# a digit run standing alone (not inside a word, so not in a hex token or trace id), with
# single spaces or dashes allowed between digits (4111-1111-1111-1111, id_4111111111111111,
# "4111 1111 1111 1111"): 13-19 digits of it that pass Luhn are a PAN
_DIGIT_RUN = re.compile(rb"(?<![0-9A-Za-z])[0-9](?:[ -]?[0-9])*(?![0-9A-Za-z])")
# the same on text, for runs of 13 digits or more only (a shorter one is no PAN)
_LONG_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9](?:[ -]?[0-9]){12,}(?![0-9A-Za-z])")


def luhn_ok(digits: str) -> bool:
    """Whether ``digits`` passes the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_pans(text: str) -> list[str]:
    """Every Luhn-valid 13-19 digit run standing alone in ``text`` (scans of logs and
    stores), except one digit repeated ("0000000000000000", an all-zero span id, passes
    Luhn): no issuer numbers a card so, and a scan that cries wolf is not read. Refusing
    identifiers (:func:`looks_like_pan`) and redaction stay strict."""
    return [m for m in PAN_IN_TEXT.findall(text) if luhn_ok(m) and len(set(m)) > 1]


def _pan_spans(data: bytes) -> list[tuple[int, int]]:
    spans = []
    for m in _DIGIT_RUN.finditer(data):
        run = m.group().replace(b" ", b"").replace(b"-", b"")
        if 13 <= len(run) <= 19 and luhn_ok(run.decode()):
            spans.append(m.span())
    return spans


def looks_like_pan(text: str) -> bool:
    """Whether ``text`` holds a Luhn-valid run of 13-19 digits standing alone (spaces and
    dashes between digits allowed): an identifier that does must not be stored. Several
    identifiers can be checked in one call joined by ``"\x00"`` (no run crosses it)."""
    for m in _LONG_RUN.finditer(text):
        run = m.group().replace(" ", "").replace("-", "")
        if len(run) <= 19 and luhn_ok(run):
            return True
    return False


def redact_pans(data: bytes) -> tuple[bytes, int]:
    """``data`` with every digit run that holds a Luhn-valid 13-19 digit number replaced
    by ``*``, and how many runs were masked."""
    spans = _pan_spans(data)
    if not spans:
        return data, 0
    out = bytearray(data)
    for start, end in spans:
        out[start:end] = b"*" * (end - start)
    return bytes(out), len(spans)
