"""Card numbers at the edge: Luhn validation and keyed-hash tokens.

A card number (PAN) is accepted only in the request body, turned at once into a token
(HMAC-SHA256 under the service's secret key, truncated), and dropped: it is never
logged, stored or published. Tokens are stable per key, so features keyed by card keep
working; without the key a token cannot be reversed or recomputed from a PAN.
"""

from __future__ import annotations

import hashlib
import hmac
import re

_PAN = re.compile(r"^[0-9]{13,19}$")
# 13-19 digits standing alone: not inside a longer digit run, not the fraction of a decimal
# number (0.8035052576083381) and not inside a word such as a hex trace id
# (...7f4551879113593a...): what a PAN scan looks for
PAN_IN_TEXT = re.compile(r"(?<![0-9A-Za-z.])[0-9]{13,19}(?![0-9A-Za-z])")


def luhn_ok(digits: str) -> bool:
    """Whether ``digits`` passes the Luhn check (ISO/IEC 7812)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_pan(text: str) -> bool:
    """A 13-19 digit string that passes Luhn."""
    return bool(_PAN.match(text)) and luhn_ok(text)


def find_pans(text: str) -> list[str]:
    """Every Luhn-valid 13-19 digit run in ``text`` (for scans of logs and stores)."""
    return [m for m in PAN_IN_TEXT.findall(text) if luhn_ok(m)]


def tokenize(pan: str, key: bytes) -> str:
    """The card token of ``pan`` under ``key``: ``tok_`` + 32 hex digits."""
    return "tok_" + hmac.new(key, pan.encode(), hashlib.sha256).hexdigest()[:32]
