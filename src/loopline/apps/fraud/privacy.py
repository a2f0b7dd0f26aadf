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

from loopline.privacy import find_pans, luhn_ok

__all__ = ["find_pans", "is_pan", "luhn_ok", "tokenize"]

_PAN = re.compile(r"^[0-9]{13,19}$")


def is_pan(text: str) -> bool:
    """A 13-19 digit string that passes Luhn."""
    return bool(_PAN.match(text)) and luhn_ok(text)


def tokenize(pan: str, key: bytes) -> str:
    """The card token of ``pan`` under ``key``: ``tok_`` + 32 hex digits."""
    return "tok_" + hmac.new(key, pan.encode(), hashlib.sha256).hexdigest()[:32]
