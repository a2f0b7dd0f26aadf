"""Personal and payment data: finding it where it must not be, erasing a subject's data
from every store, and keeping each store's data no longer than its retention."""

from loopline.privacy.erasure import (
    ErasureLog,
    ErasureReport,
    Identifiers,
    Subject,
    Target,
    dead_letters_target,
    erase,
    event_log_target,
    find_identifiers,
    offline_store_target,
    online_store_target,
    prediction_log_target,
    redact_reports,
    reports_target,
)
from loopline.privacy.keys import KeyStore
from loopline.privacy.retention import Expiry, Retention, RetentionJob, expiries
from loopline.privacy.scan import PAN_IN_TEXT, find_pans, looks_like_pan, luhn_ok, redact_pans
from loopline.privacy.shredding import ShreddedLog, shredded_log_target

__all__ = [
    "PAN_IN_TEXT",
    "ErasureLog",
    "ErasureReport",
    "Expiry",
    "Identifiers",
    "KeyStore",
    "Retention",
    "RetentionJob",
    "ShreddedLog",
    "Subject",
    "Target",
    "dead_letters_target",
    "erase",
    "event_log_target",
    "expiries",
    "find_identifiers",
    "find_pans",
    "looks_like_pan",
    "luhn_ok",
    "offline_store_target",
    "online_store_target",
    "prediction_log_target",
    "redact_pans",
    "redact_reports",
    "reports_target",
    "shredded_log_target",
]
