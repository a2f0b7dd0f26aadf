"""Per-key token budgets: a bucket a key that refills at its rate, reservations given
back, a 429 that says when to retry, a 422 for a cost no bucket holds, bounded keys."""

from __future__ import annotations

import pytest

from loopline.exceptions import ConfigError
from loopline.serving import Quota, RequestError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_refills_at_its_rate_and_refusals_say_when() -> None:
    clock = Clock()
    quota = Quota(600, clock=clock)  # 10 a second
    quota.take("a", 500)
    with pytest.raises(RequestError) as refused:
        quota.take("a", 200)
    assert refused.value.status == 429
    assert refused.value.headers == [(b"retry-after", b"10")]  # 100 short at 10 a second
    quota.take("b", 600)  # another key has its own bucket
    clock.now = 10.0
    quota.take("a", 200)


def test_unused_reservations_come_back_and_never_overfill() -> None:
    clock = Clock()
    quota = Quota(100, clock=clock)
    quota.take("a", 100)
    quota.give_back("a", 60)
    quota.take("a", 60)
    with pytest.raises(RequestError):
        quota.take("a", 1)
    quota.give_back("a", 10_000)
    quota.take("a", 100)  # full, not more
    with pytest.raises(RequestError):
        quota.take("a", 1)


def test_a_cost_beyond_any_bucket_is_a_422_naming_the_field() -> None:
    quota = Quota(100, overrides={"big": 1000})
    with pytest.raises(RequestError) as refused:
        quota.take("a", 101)
    assert refused.value.status == 422
    assert refused.value.problem.field == "max_tokens"
    quota.take("big", 900)


def test_buckets_are_bounded_and_limits_checked() -> None:
    clock = Clock()
    quota = Quota(10, max_keys=2, clock=clock)
    for key in "abc":
        quota.take(key, 10)
    assert len(quota._buckets) == 2
    quota.take("a", 10)  # forgotten: a fresh bucket, as an idle key's would be by now
    with pytest.raises(ConfigError):
        Quota(0)
