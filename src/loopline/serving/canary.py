"""The canary guard: a challenger serving a share of live traffic is rolled back on its
own when it degrades against the champion.

Labels arrive days late, so a canary is judged on what is known at once, arm against
arm over the same period:
- errors: the challenger's model failing, answered by a fallback;
- its flag rate: the share of review and decline decisions, against the champion's. A
  model that suddenly declines far more, or far less, is wrong in one of two costly
  ways;
- its model latency p99, against the champion's.

A challenger that is better may well flag more than the champion (it catches what the
champion misses): the flag-rate limit is around ``expected_flag_ratio``, the ratio its
shadow run showed on the same traffic (1.0 when unknown).

The guard waits for ``min_decisions`` on each arm before judging. Its counters start
again whenever the routing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Arm:
    """What one arm did since the canary started."""

    decisions: int = 0
    flagged: int = 0  # review or decline
    errors: int = 0  # the model failed; a fallback answered
    model_ms: list[float] = field(default_factory=list)  # the newest 10,000

    def add(self, flagged: bool, error: bool, model_ms: float) -> None:
        self.decisions += 1
        self.flagged += flagged
        self.errors += error
        self.model_ms.append(model_ms)
        if len(self.model_ms) > 10_000:
            del self.model_ms[:5_000]

    @property
    def flag_rate(self) -> float:
        return self.flagged / max(self.decisions, 1)

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.model_ms, 99)) if self.model_ms else 0.0


@dataclass
class CanaryGuard:
    min_decisions: int = 200
    max_error_rate: float = 0.01
    max_flag_ratio: float = 3.0  # either way: 3x more flags, or 3x fewer
    max_latency_ratio: float = 2.0
    latency_allowance_ms: float = 1.0  # differences below it are scheduling noise (promotion.gate)
    expected_flag_ratio: float = 1.0  # challenger / champion flag rate seen in shadow
    arms: dict[str, Arm] = field(default_factory=dict)
    champion_flags: int = 0  # shadowed decisions the champion's score alone would flag
    shadow_flags: int = 0  # and by the challenger's

    def record(self, arm: str, *, flagged: bool, error: bool, model_ms: float) -> None:
        self.arms.setdefault(arm, Arm()).add(flagged, error, model_ms)

    def reset(self) -> None:
        self.arms.clear()
        self.shadow_flags = self.champion_flags = 0

    def record_shadow(self, *, champion_flags: bool, challenger_flags: bool) -> None:
        """One shadowed decision: whether each model's score alone would flag it."""
        self.champion_flags += champion_flags
        self.shadow_flags += challenger_flags

    def shadow_flag_ratio(self) -> float:
        """The challenger's flag rate over the champion's on the shadowed decisions."""
        return (self.shadow_flags + 1) / (self.champion_flags + 1)

    def verdict(self) -> str | None:
        """Why the challenger must be rolled back, or None (healthy, or too early)."""
        champion, challenger = self.arms.get("champion"), self.arms.get("challenger")
        if champion is None or challenger is None:
            return None
        if min(champion.decisions, challenger.decisions) < self.min_decisions:
            return None
        error_rate = challenger.errors / challenger.decisions
        if error_rate > self.max_error_rate:
            return (
                f"challenger model errors in {error_rate:.1%} of {challenger.decisions} "
                f"decisions (limit {self.max_error_rate:.1%})"
            )
        # one flag each way keeps the ratio finite when an arm flags nothing
        ratio = (challenger.flagged + 1) / (challenger.decisions + 1)
        ratio /= (champion.flagged + 1) / (champion.decisions + 1)
        expected = self.expected_flag_ratio
        if not expected / self.max_flag_ratio <= ratio <= expected * self.max_flag_ratio:
            return (
                f"challenger flags {challenger.flag_rate:.1%} of its decisions against "
                f"{champion.flag_rate:.1%} for the champion ({ratio:.2f}x, expected "
                f"{expected:.2f}x from its shadow run, limit {self.max_flag_ratio:.1f}x "
                "either way)"
            )
        limit_ms = max(
            self.max_latency_ratio * champion.p99_ms, champion.p99_ms + self.latency_allowance_ms
        )
        if champion.p99_ms > 0 and challenger.p99_ms > limit_ms:
            return (
                f"challenger model p99 {challenger.p99_ms:.2f} ms against "
                f"{champion.p99_ms:.2f} ms (limit {self.max_latency_ratio:.1f}x "
                f"or +{self.latency_allowance_ms:g} ms)"
            )
        return None
