"""The promotion gate: may the challenger, shadowed on live traffic, replace the champion?

The evidence is the prediction log. Every decision a shadowed challenger saw holds both
models' scores before any rule adjusted them (``model_score`` of the champion,
``shadow_score`` of the challenger), and the labels that have matured by then are joined
by transaction id. The gate has three parts.

Quality: the challenger's average precision must beat the champion's on the same
transactions. The test is a one-sided paired bootstrap: resample the labelled
transactions, compare the two APs in each resample, and require the challenger ahead in
at least ``confidence`` of them. It refuses with too few matured labels (``min_frauds``
frauds) rather than guess.

Latency: the challenger's p99 scoring time must stay within ``max_latency_ratio`` of the
champion's, or within ``latency_allowance_ms`` of it. The allowance (1 ms, 2 % of the
50 ms request budget) is there because one-row models score in tens of microseconds: at
that scale a ratio measures the machine's scheduling noise, not the model, and a 20 us
difference is nothing a request's budget can notice.

Errors: the challenger's error rate must stay within ``max_error_rate``.

The result says which parts passed and why, in words, to be recorded with the step.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from loopline.feedback.labels import average_precision


@dataclass(frozen=True)
class Evidence:
    """Paired scores of the champion and the challenger on labelled transactions, and
    each model's serving record."""

    y: npt.NDArray[np.int8]
    champion: npt.NDArray[np.float64]
    challenger: npt.NDArray[np.float64]
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
    min_frauds: int = 30,
    max_latency_ratio: float = 1.25,
    latency_allowance_ms: float = 1.0,
    max_error_rate: float = 0.001,
    resamples: int = 1000,
    seed: int = 0,
) -> GateResult:
    """Whether the challenger may be promoted, and why (see the module docstring)."""
    e = evidence
    frauds = int(e.y.sum())
    figures: dict[str, float] = {"labelled": float(len(e.y)), "frauds": float(frauds)}
    reasons: list[str] = []
    passed = True
    if frauds < min_frauds:
        wait = (
            f"only {frauds} matured frauds among {len(e.y)} labelled decisions "
            f"(need {min_frauds}): wait for more labels"
        )
        return GateResult(False, [wait], figures, wait=True)
    ap_champion = average_precision(e.y, e.champion)
    ap_challenger = average_precision(e.y, e.challenger)
    wins = _bootstrap_wins(e, resamples, seed)
    figures |= {
        "ap_champion": ap_champion,
        "ap_challenger": ap_challenger,
        "p_challenger_better": wins,
    }
    if wins >= confidence:
        reasons.append(
            f"quality: AP {ap_challenger:.3f} against {ap_champion:.3f}, ahead in "
            f"{wins:.1%} of {resamples} paired resamples (>= {confidence:.0%})"
        )
    else:
        passed = False
        reasons.append(
            f"quality: AP {ap_challenger:.3f} against {ap_champion:.3f}, ahead in only "
            f"{wins:.1%} of {resamples} paired resamples (< {confidence:.0%})"
        )
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


def _bootstrap_wins(e: Evidence, resamples: int, seed: int) -> float:
    """Share of paired resamples in which the challenger's AP is above the champion's."""
    rng = np.random.default_rng(seed)
    n = len(e.y)
    wins = 0
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        y = e.y[idx]
        if y.sum() == 0:
            continue
        wins += average_precision(y, e.challenger[idx]) > average_precision(y, e.champion[idx])
    return wins / resamples


def paired_p99_ms(
    champion: Callable[[npt.NDArray[np.float64]], object],
    challenger: Callable[[npt.NDArray[np.float64]], object],
    x_champion: npt.NDArray[np.float64],
    x_challenger: npt.NDArray[np.float64],
    repeats: int = 3,
) -> tuple[float, float]:
    """Each model's p99 time to score one row, timed row by row in turns on the same
    transactions (each with its own feature columns), so that a busy machine slows both
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
    decisions_db: Path,
    labels_db: Path,
    challenger: str,
    *,
    labelled_before_ms: int,
    decided_before_ms: int | None = None,
) -> Evidence:
    """The challenger's shadowed decisions (those decided before ``decided_before_ms``:
    the matured ones) with the labels that arrived before ``labelled_before_ms`` (what
    was known when the gate ran), and how often the challenger failed to score."""
    until = decided_before_ms if decided_before_ms is not None else 2**62
    with sqlite3.connect(decisions_db) as conn:
        conn.execute("ATTACH DATABASE ? AS book", (str(labels_db),))
        rows: Sequence[tuple[float, float, int]] = conn.execute(
            """SELECT d.model_score, d.shadow_score, l.is_fraud
               FROM decisions d JOIN book.labels l USING (transaction_id)
               WHERE d.shadow_model = ? AND d.shadow_score IS NOT NULL
                 AND d.model_score IS NOT NULL AND l.label_time_ms < ?
                 AND d.decided_ms < ?""",
            (challenger, labelled_before_ms, until),
        ).fetchall()
        calls, errors = conn.execute(
            """SELECT count(*), coalesce(sum(shadow_score IS NULL), 0) FROM decisions
               WHERE shadow_model = ? AND decided_ms < ?""",
            (challenger, until),
        ).fetchone()
    got = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return Evidence(
        y=got[:, 2].astype(np.int8),
        champion=got[:, 0],
        challenger=got[:, 1],
        challenger_errors=int(errors),
        challenger_calls=int(calls),
    )
