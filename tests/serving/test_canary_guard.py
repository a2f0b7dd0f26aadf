"""The canary guard: a challenger serving a share of traffic is judged against the
champion on errors, its flag rate and latency, and only with enough decisions."""

from __future__ import annotations

from loopline.serving import CanaryGuard


def _guard(champion: tuple[int, int, int], challenger: tuple[int, int, int]) -> CanaryGuard:
    """Arms given as (decisions, flagged, errors), model time 1 ms each."""
    guard = CanaryGuard(min_decisions=100)
    for arm, (n, flagged, errors) in (("champion", champion), ("challenger", challenger)):
        for i in range(n):
            guard.record(arm, flagged=i < flagged, error=i < errors, model_ms=1.0)
    return guard


def test_the_guard_judges_errors_flag_rates_and_waits_for_enough_decisions() -> None:
    assert _guard((500, 25, 0), (500, 30, 0)).verdict() is None, "a similar canary is fine"
    assert _guard((500, 25, 0), (50, 50, 0)).verdict() is None, "too early to judge"
    failing = _guard((500, 25, 0), (500, 25, 20)).verdict()
    assert failing is not None
    assert failing.startswith("challenger model errors in 4.0% of 500 decisions")
    declines_all = _guard((500, 25, 0), (500, 400, 0)).verdict()
    assert declines_all is not None
    assert "challenger flags 80.0% of its decisions against 5.0%" in declines_all
    flags_nothing = _guard((500, 100, 0), (500, 0, 0)).verdict()
    assert flags_nothing is not None, "far fewer flags is as wrong as far more"
    catches_more = _guard((500, 25, 0), (500, 200, 0))  # 8x the champion's flags
    assert catches_more.verdict() is not None
    catches_more.expected_flag_ratio = 6.0  # what its shadow run showed on the same traffic
    assert catches_more.verdict() is None, "flagging as it did in shadow is no degradation"
    catches_more.expected_flag_ratio = 1.5
    assert "expected 1.50x from its shadow run" in (catches_more.verdict() or "")
    slow = CanaryGuard(min_decisions=10)
    for _ in range(20):
        slow.record("champion", flagged=False, error=False, model_ms=1.0)
        slow.record("challenger", flagged=False, error=False, model_ms=5.0)
    assert (slow.verdict() or "").startswith("challenger model p99 5.00 ms against 1.00 ms")
    jittery = CanaryGuard(min_decisions=10)  # 3x, but 40 us: a machine's noise, not the model
    for _ in range(20):
        jittery.record("champion", flagged=False, error=False, model_ms=0.02)
        jittery.record("challenger", flagged=False, error=False, model_ms=0.06)
    assert jittery.verdict() is None
