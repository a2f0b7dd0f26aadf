"""The promotion gate: may the challenger, shadowed on live traffic, replace the champion?

The evidence is the prediction log. Every prediction a shadowed challenger saw holds
both models' outputs (the champion's ``outputs``, the challenger's ``shadow_outputs``),
and the labels that have matured by then are joined by request id. The gate has three
parts.

Quality: the challenger's metric (the task's headline: average precision, NDCG@k,
macro F1, ...) must beat the champion's on the same requests. The test is a one-sided
paired bootstrap: resample the labelled requests, compare the two models' metric in
each resample, and require the challenger ahead in at least ``confidence`` of them. It
refuses with too little signal (``min_support``: positives, requests with a relevant
item, labelled classes) rather than guess.

Latency: the challenger's p99 time must stay within ``max_latency_ratio`` of the
champion's, or within ``latency_allowance_ms`` of it. The allowance (1 ms, 2 % of a
50 ms request budget) is there because one-row models score in tens of microseconds:
at that scale a ratio measures the machine's scheduling noise, not the model, and a
20 us difference is nothing a request's budget can notice.

Errors: the challenger's error rate must stay within ``max_error_rate``.

The result says which parts passed and why, in words, to be recorded with the step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from loopline.predictions import Outcomes
from loopline.tasks import Metric
from loopline.tasks.base import Arrays, take


@dataclass(frozen=True)
class Evidence:
    """The champion's and the challenger's metric arrays on the same labelled requests
    (row-paired), and the challenger's serving record."""

    metric: Metric
    champion: Arrays
    challenger: Arrays
    champion_p99_ms: float = 0.0
    challenger_p99_ms: float = 0.0
    challenger_errors: int = 0
    challenger_calls: int = 0


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str]
    figures: dict[str, float] = field(default_factory=dict)
    wait: bool = False  # not judged: too few matured labels yet


def gate(
    evidence: Evidence,
    *,
    confidence: float = 0.95,
    min_support: int = 30,
    max_latency_ratio: float = 1.25,
    latency_allowance_ms: float = 1.0,
    max_error_rate: float = 0.001,
    resamples: int = 1000,
    seed: int = 0,
) -> GateResult:
    """Whether the challenger may be promoted, and why (see the module docstring)."""
    e = evidence
    metric = e.metric
    both = e.champion[0] & e.challenger[0]  # rows both models' arrays can use
    champion, challenger = take(e.champion, both), take(e.challenger, both)
    support = metric.support(champion)
    figures: dict[str, float] = {"labelled": float(both.sum()), "support": float(support)}
    reasons: list[str] = []
    passed = True
    if support < min_support:
        wait = (
            f"only {support} matured labels with signal among {int(both.sum())} labelled "
            f"predictions (need {min_support}): wait for more labels"
        )
        return GateResult(False, [wait], figures, wait=True)
    ours, theirs = metric.value(challenger), metric.value(champion)
    wins = _bootstrap_wins(metric, champion, challenger, resamples, seed)
    name = metric.name
    figures |= {f"{name}_champion": theirs, f"{name}_challenger": ours, "p_challenger_better": wins}
    quality = f"quality: {name} {ours:.3f} against {theirs:.3f}, ahead in"
    ahead = f"{wins:.1%} of {resamples} paired resamples"
    if wins >= confidence:
        reasons.append(f"{quality} {ahead} (>= {confidence:.0%})")
    else:
        passed = False
        reasons.append(f"{quality} only {ahead} (< {confidence:.0%})")
    if e.champion_p99_ms > 0:
        ratio = e.challenger_p99_ms / e.champion_p99_ms
        figures["latency_ratio"] = ratio
        limit_ms = max(
            max_latency_ratio * e.champion_p99_ms, e.champion_p99_ms + latency_allowance_ms
        )
        passed &= e.challenger_p99_ms <= limit_ms
        reasons.append(
            f"latency: p99 {e.challenger_p99_ms:.2f} ms against {e.champion_p99_ms:.2f} ms "
            f"({ratio:.2f}x; limit {max_latency_ratio:.2f}x or +{latency_allowance_ms:g} ms)"
        )
    rate = e.challenger_errors / max(e.challenger_calls, 1)
    figures["error_rate"] = rate
    passed &= rate <= max_error_rate
    reasons.append(
        f"errors: {e.challenger_errors} of {e.challenger_calls} calls "
        f"({rate:.3%}, limit {max_error_rate:.3%})"
    )
    return GateResult(passed, reasons, figures)


def _bootstrap_wins(
    metric: Metric, champion: Arrays, challenger: Arrays, resamples: int, seed: int
) -> float:
    """Share of paired resamples in which the challenger's metric is above the
    champion's (a resample where the metric is undefined counts as no win)."""
    rng = np.random.default_rng(seed)
    n = len(champion[0])
    wins = 0
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        wins += metric.value(take(challenger, idx)) > metric.value(take(champion, idx))
    return wins / resamples


def paired_p99_ms(
    champion: Callable[[npt.NDArray[np.float64]], object],
    challenger: Callable[[npt.NDArray[np.float64]], object],
    x_champion: npt.NDArray[np.float64],
    x_challenger: npt.NDArray[np.float64],
    repeats: int = 3,
) -> tuple[float, float]:
    """Each model's p99 time to answer one row, timed row by row in turns on the same
    requests (each with its own input columns), so that a busy machine slows both
    alike; a row's time is the best of ``repeats`` (a time slice lost to another
    process is not the model's)."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(len(x_champion)):
        for k, (score, x) in enumerate(((champion, x_champion), (challenger, x_challenger))):
            best = math.inf
            for _ in range(repeats):
                started = time.perf_counter()
                score(x[i : i + 1])
                best = min(best, time.perf_counter() - started)
            times[k].append(best * 1000)
    return float(np.percentile(times[0], 99)), float(np.percentile(times[1], 99))


def shadow_evidence(
    outcomes: Outcomes,
    metric: Metric,
    challenger: str,
    *,
    labelled_before_ms: int,
    decided_before_ms: int = 2**62,
    latency: Callable[[], tuple[float, float]] | None = None,
) -> Evidence:
    """The challenger's shadowed predictions (those decided before
    ``decided_before_ms``: the matured ones) with the labels that arrived before
    ``labelled_before_ms`` (what was known when the gate ran), how often the challenger
    failed, and, with ``latency``, both models' p99 time (e.g. :func:`paired_p99_ms`)."""
    pairs = outcomes.shadow_pairs(
        challenger, labelled_before_ms=labelled_before_ms, decided_before_ms=decided_before_ms
    )
    evidence = Evidence(
        metric=metric,
        champion=metric.arrays(pairs.champion, pairs.labels),
        challenger=metric.arrays(pairs.challenger, pairs.labels),
        challenger_errors=pairs.errors,
        challenger_calls=pairs.calls,
    )
    if latency is None:
        return evidence
    champion_ms, challenger_ms = latency()
    return replace(evidence, champion_p99_ms=champion_ms, challenger_p99_ms=challenger_ms)
