"""Repeat offenders: the limit, its decay and the hand-computed wait, LRU bounds, and user
ids kept only as keyed hashes."""

from __future__ import annotations

import hashlib
import hmac
import math

import pytest

from loopline.apps.moderation.offenders import Offenders
from loopline.exceptions import ConfigError

SECRET = b"test-secret-0123456789"


def test_strikes_decay_with_the_half_life() -> None:
    o = Offenders(SECRET, half_life_s=3600.0, limit=8.0)
    o.strike("ana", 4, now=0.0)
    assert o.score("ana", now=0.0) == 4.0
    assert o.score("ana", now=3600.0) == pytest.approx(2.0)
    o.strike("ana", 4, now=3600.0)
    assert o.score("ana", now=3600.0) == pytest.approx(6.0)
    assert o.score("ana", now=3 * 3600.0) == pytest.approx(1.5)
    assert o.score("bo", now=0.0) == 0.0


def test_over_the_limit_waits_until_the_score_decays_to_it() -> None:
    o = Offenders(SECRET, half_life_s=3600.0, limit=8.0)
    o.strike("ana", 4, now=0.0)
    o.strike("ana", 4, now=0.0)
    assert o.allowed("ana", now=0.0) == (True, 0.0)  # 8 is not above 8
    o.strike("ana", 4, now=0.0)  # 12
    ok, retry_after = o.allowed("ana", now=0.0)
    assert not ok
    # 12 * 2^(-t/3600) = 8  =>  t = 3600 * log2(12 / 8) = 2105.865 s
    assert retry_after == pytest.approx(3600.0 * math.log2(1.5))
    assert retry_after == pytest.approx(2105.865, abs=1e-3)
    ok, later = o.allowed("ana", now=1000.0)
    assert not ok
    assert later == pytest.approx(retry_after - 1000.0)
    assert o.allowed("ana", now=retry_after + 1e-6) == (True, 0.0)
    assert o.allowed("never-struck", now=0.0) == (True, 0.0)


def test_least_recently_seen_users_are_forgotten_first() -> None:
    o = Offenders(SECRET, capacity=2, limit=1.0)
    o.strike("ana", 5, now=0.0)
    o.strike("bo", 5, now=1.0)
    assert o.allowed("ana", now=2.0)[0] is False  # ana seen: bo is now the oldest
    o.strike("carla", 5, now=3.0)
    assert len(o) == 2
    assert o.evicted_ == 1
    assert o.score("bo", now=3.0) == 0.0
    assert o.score("ana", now=3.0) > 0.0
    assert o.score("carla", now=3.0) > 0.0


def test_users_are_stored_as_keyed_hashes() -> None:
    o = Offenders(SECRET)
    o.strike("alice@example.org", 3, now=0.0)
    (key,) = o._users
    assert key == hmac.new(SECRET, b"alice@example.org", hashlib.sha256).digest()
    assert b"alice" not in key
    other = Offenders(b"another-secret-0123456")
    other.strike("alice@example.org", 3, now=0.0)
    assert next(iter(other._users)) != key  # without the secret, ids cannot be matched


def test_bad_input_and_configuration_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        Offenders(b"short")
    with pytest.raises(ConfigError, match="half_life_s > 0"):
        Offenders(SECRET, half_life_s=0.0)
    o = Offenders(SECRET)
    with pytest.raises(ValueError, match="positive and finite"):
        o.strike("ana", -1, now=0.0)
    with pytest.raises(ValueError, match="must be a number"):
        o.strike("ana", "5", now=0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty text"):
        o.allowed("", now=0.0)
    with pytest.raises(ValueError, match="finite time"):
        o.allowed("ana", now=math.nan)
