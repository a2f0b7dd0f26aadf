"""Personal and payment data: finding it where it must not be, erasing a subject's data
from every store, and keeping each store's data no longer than its retention."""

from loopline.privacy.scan import PAN_IN_TEXT, find_pans, looks_like_pan, luhn_ok, redact_pans

__all__ = ["PAN_IN_TEXT", "find_pans", "looks_like_pan", "luhn_ok", "redact_pans"]
