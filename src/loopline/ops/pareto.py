"""Latency, quality and cost trade-offs, measured: points, their Pareto front, a report.

A :class:`Point` is one setting of a system's levers (a model size, a feature-set size, a
batch size, a search parameter) measured on one machine: the latency of a call (its
median and 99th percentile, timed one call at a time), a quality figure on a held-out
set (higher is better, unless the points say ``higher_is_better=False``, as for a
perplexity) and the cost of a million predictions at a price per core-hour.
:func:`pareto_front` keeps the points no other point beats on all three at once (lower
latency, better quality, lower cost). :func:`time_calls` times a call;
:func:`write_front_report` draws the front and tabulates every point.

    points = [Point(name="big", lever="size", latency_p50_ms=2.0, quality=0.8, ...), ...]
    pareto_front(points)  # the names of the non-dominated points, in the order given
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loopline.exceptions import ConfigError
from loopline.ops.prices import Prices


@dataclass(frozen=True, kw_only=True, slots=True)
class Point:
    """One measured setting of the levers.

    Attributes:
        name: Unique within a sweep (``trees=100``).
        lever: The lever this point moves (``size``, ``batching``); the baseline's own.
        settings: The lever settings that make it (``{"trees": 100, "leaves": 31}``).
        latency_p50_ms: Median latency of one call, in milliseconds.
        latency_p99_ms: 99th percentile of the same calls.
        quality: The headline quality figure on the held-out set.
        cost_per_million: US dollars of CPU time per million predictions.
        figures: More measured figures (other quality metrics, CPU-seconds).
        higher_is_better: The quality's direction (``False`` for a perplexity or an
            error); the points of one sweep share it.
    """

    name: str
    lever: str
    settings: Mapping[str, object] = field(default_factory=dict)
    latency_p50_ms: float
    latency_p99_ms: float
    quality: float
    cost_per_million: float
    figures: Mapping[str, float] = field(default_factory=dict)
    higher_is_better: bool = True

    def dominates(self, other: Point) -> bool:
        """At least as good as ``other`` on latency (median), quality and cost, and
        strictly better on one of them.

        Raises:
            ConfigError: the two points' qualities run in opposite directions.
        """
        if self.higher_is_better != other.higher_is_better:
            raise ConfigError(
                f"Points {self.name!r} and {other.name!r} disagree on higher_is_better; "
                "the points of one sweep must measure quality the same way."
            )
        sign = -1.0 if self.higher_is_better else 1.0  # compared as "lower is better"
        mine = (self.latency_p50_ms, sign * self.quality, self.cost_per_million)
        theirs = (other.latency_p50_ms, sign * other.quality, other.cost_per_million)
        return all(a <= b for a, b in zip(mine, theirs, strict=True)) and mine != theirs

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["settings"], out["figures"] = dict(self.settings), dict(self.figures)
        return out


def pareto_front(points: Sequence[Point]) -> list[str]:
    """The names of the points no other point dominates (equal points all stay), in
    the order given."""
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise ConfigError(f"Point names must be unique in a sweep; got {names}.")
    return [p.name for p in points if not any(q.dominates(p) for q in points)]


def cost_per_million(cpu_seconds_per_prediction: float, prices: Prices) -> float:
    """US dollars of CPU for a million predictions: CPU-seconds / 3600 x the price of a
    core-hour x 10^6 (memory, network and idle capacity not counted)."""
    return cpu_seconds_per_prediction / 3600.0 * prices.core_hour * 1e6


@dataclass(frozen=True, slots=True)
class Timing:
    """Calls timed one at a time: the latency of a call, and the process CPU time each
    prediction took (all threads, so a multi-threaded call is not undercounted)."""

    p50_ms: float
    p99_ms: float
    cpu_s_per_prediction: float
    calls: int


def time_calls(
    call: Callable[[int], object], *, calls: int, per_call: int = 1, warmup: int = 20
) -> Timing:
    """Time ``call(i)`` for ``i`` in ``range(calls)`` after ``warmup`` untimed calls;
    each call makes ``per_call`` predictions."""
    if calls < 1 or per_call < 1:
        raise ConfigError(
            f"time_calls() needs calls >= 1 and per_call >= 1; got {calls}, {per_call}."
        )
    for i in range(warmup):
        call(i % calls)
    took = []
    cpu = time.process_time()
    for i in range(calls):
        start = time.perf_counter()
        call(i)
        took.append((time.perf_counter() - start) * 1e3)
    cpu_s = time.process_time() - cpu
    cuts = statistics.quantiles(took, n=100, method="inclusive") if len(took) > 1 else took * 99
    return Timing(
        p50_ms=statistics.median(took),
        p99_ms=cuts[98],
        cpu_s_per_prediction=cpu_s / (calls * per_call),
        calls=calls,
    )


def write_front_report(
    path: Path,
    points: Sequence[Point],
    *,
    title: str,
    quality_name: str,
    prices: Prices,
    notes: Sequence[str] = (),
    sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """One HTML page: latency against quality with the front drawn (cost as colour), cost
    against quality, and a table of every point with the front marked."""
    from loopline.reports import table, write_page

    on = set(pareto_front(points))
    rows = [
        [
            "yes" if p.name in on else "",
            p.name,
            p.lever,
            p.latency_p50_ms,
            p.latency_p99_ms,
            round(p.quality, 4),
            p.cost_per_million,
            ", ".join(f"{k} {v:.4g}" for k, v in p.figures.items()),
        ]
        for p in points
    ]
    header = ["front", "point", "lever", "p50 ms", "p99 ms", quality_name, "USD / 1M", "more"]
    return write_page(
        path,
        title=title,
        summary={
            "points": len(points),
            "on the front": len(on),
            "quality": quality_name,
            "core-hour (USD)": prices.core_hour,
            "prices": f"{prices.date}, {prices.source}",
        },
        notes=notes,
        sections=[
            ("Latency against quality", _figure(points, on, quality_name)),
            ("Every point", table(rows, header)),
            *sections,
        ],
    )


def _figure(points: Sequence[Point], on: set[str], quality_name: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from loopline.training import svg

    fig, (lat, cost) = plt.subplots(1, 2, figsize=(13, 5), layout="constrained")
    levers = sorted({p.lever for p in points})
    markers = dict(zip(levers, "osD^v<>ph*", strict=False))
    costs = [p.cost_per_million for p in points]
    for p in points:
        shown = lat.scatter(
            [p.latency_p50_ms],
            [p.quality],
            c=[p.cost_per_million],
            vmin=min(costs),
            vmax=max(costs) or 1.0,
            cmap="viridis",
            marker=markers.get(p.lever, "o"),
            s=80 if p.name in on else 36,
            edgecolors="crimson" if p.name in on else "none",
            linewidths=1.5,
        )
        lat.annotate(  # the front's names only: the table names every point
            p.name if p.name in on else "",
            (p.latency_p50_ms, p.quality),
            fontsize=7,
            xytext=(4, 2),
            textcoords="offset points",
        )
        cost.scatter(
            [p.cost_per_million],
            [p.quality],
            marker=markers.get(p.lever, "o"),
            color="crimson" if p.name in on else "grey",
        )
    best = sorted((p for p in points if p.name in on), key=lambda p: p.latency_p50_ms)
    lat.step(
        [p.latency_p50_ms for p in best],
        _running_best(best),
        where="post",
        color="crimson",
        lw=1,
        label="front: best quality at this latency or less",
    )
    for lever in levers:
        lat.scatter([], [], marker=markers.get(lever, "o"), color="grey", label=lever)
    lat.set(xscale="log", xlabel="latency per call, p50 (ms, log)", ylabel=quality_name)
    lat.legend(loc="lower right", fontsize=8)
    fig.colorbar(shown, ax=lat, label="USD per million predictions")
    cost.set(
        xscale="log",
        xlabel="USD per million predictions (log)",
        ylabel=quality_name,
        title="red: on the front",
    )
    if points and not points[0].higher_is_better:  # better is still up
        lat.invert_yaxis()
        cost.invert_yaxis()
    return svg(fig)


def _running_best(points: Sequence[Point]) -> list[float]:
    out: list[float] = []
    for p in points:
        better = max if p.higher_is_better else min
        out.append(better(out[-1], p.quality) if out else p.quality)
    return out


def points_table(points: Sequence[Point]) -> str:
    """The points as a plain-text table (what the benchmark prints)."""
    on = set(pareto_front(points))
    lines = [f"{'':2}{'point':28}{'p50 ms':>10}{'p99 ms':>10}{'quality':>10}{'USD/1M':>10}"]
    for p in points:
        mark = "* " if p.name in on else "  "
        lines.append(
            f"{mark}{p.name:28}{p.latency_p50_ms:10.4f}{p.latency_p99_ms:10.4f}"
            f"{p.quality:10.4f}{p.cost_per_million:10.3g}"
        )
    return "\n".join(lines)
