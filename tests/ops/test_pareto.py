"""The Pareto front on hand-built points, the cost formula, timing, the report, and
distillation on a small synthetic problem."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from loopline.exceptions import ConfigError
from loopline.ops.pareto import (
    Point,
    cost_per_million,
    pareto_front,
    time_calls,
    write_front_report,
)
from loopline.ops.prices import load_prices


def point(name: str, latency: float, quality: float, cost: float, lever: str = "size") -> Point:
    return Point(
        name=name,
        lever=lever,
        latency_p50_ms=latency,
        latency_p99_ms=2 * latency,
        quality=quality,
        cost_per_million=cost,
    )


def test_a_single_point_is_the_front() -> None:
    assert pareto_front([point("only", 5.0, 0.1, 3.0)]) == ["only"]
    assert pareto_front([]) == []


@pytest.mark.parametrize(
    ("worse", "why"),
    [
        (point("slower", 2.0, 0.9, 1.0), "latency"),
        (point("worse", 1.0, 0.8, 1.0), "quality"),
        (point("dearer", 1.0, 0.9, 2.0), "cost"),
        (point("all three", 3.0, 0.5, 9.0), "everything"),
    ],
)
def test_a_point_beaten_on_one_axis_and_tied_on_the_rest_is_off(worse: Point, why: str) -> None:
    best = point("best", 1.0, 0.9, 1.0)
    assert best.dominates(worse), why
    assert not worse.dominates(best)
    assert pareto_front([worse, best]) == ["best"]


def test_trade_offs_all_stay_on_the_front() -> None:
    points = [
        point("fast", 1.0, 0.70, 1.0),
        point("accurate", 10.0, 0.95, 5.0),
        point("cheap_slow", 20.0, 0.80, 0.1),  # slow and mediocre, but the cheapest
        point("middle", 5.0, 0.85, 3.0),
        point("beaten", 6.0, 0.84, 3.5),  # "middle" is better on all three
    ]
    assert pareto_front(points) == ["fast", "accurate", "cheap_slow", "middle"]


def test_equal_points_do_not_knock_each_other_off() -> None:
    a, b = point("a", 1.0, 0.9, 1.0), point("b", 1.0, 0.9, 1.0)
    assert not a.dominates(b)
    assert pareto_front([a, b, point("c", 1.0, 0.9, 1.5)]) == ["a", "b"]


def test_names_must_be_unique() -> None:
    with pytest.raises(ConfigError, match="unique"):
        pareto_front([point("x", 1.0, 0.9, 1.0), point("x", 2.0, 0.8, 1.0)])


def test_cost_per_million_is_cpu_seconds_at_the_core_hour_price() -> None:
    prices = load_prices()
    # 3.6 ms of CPU a prediction: a million take 3,600 s, one core-hour
    assert cost_per_million(0.0036, prices) == pytest.approx(prices.core_hour)
    assert cost_per_million(0.0, prices) == 0.0


def test_measure_counts_calls_and_predictions() -> None:
    seen: list[int] = []
    timing = time_calls(seen.append, calls=50, per_call=4, warmup=3)
    assert seen[3:] == list(range(50))  # the timed calls, after 3 warm-up calls
    assert timing.calls == 50
    assert 0 <= timing.p50_ms <= timing.p99_ms
    assert timing.cpu_s_per_prediction >= 0
    with pytest.raises(ConfigError, match="calls"):
        time_calls(seen.append, calls=0)


def test_report_marks_the_front(tmp_path: Path) -> None:
    points = [
        point("fast", 1.0, 0.70, 1.0),
        point("accurate", 10.0, 0.95, 5.0, lever="batching"),
        point("beaten", 12.0, 0.90, 6.0),
    ]
    page = write_front_report(
        tmp_path / "r.html",
        points,
        title="sweep",
        quality_name="AP",
        prices=load_prices(),
        notes=["a note"],
    ).read_text()
    assert "<svg" in page
    assert "a note" in page
    marks = {name: mark for mark, name in re.findall(r"<tr><td>(yes|)</td><td>([^<]+)</td>", page)}
    assert marks == {"fast": "yes", "accurate": "yes", "beaten": ""}


def test_a_distilled_student_ranks_like_its_teacher() -> None:
    """A one-feature teacher score; the student sees five features (one of them the
    teacher's) and only the teacher's scores: it must find the feature that matters."""
    from scipy.stats import spearmanr

    from loopline.training import BoostingConfig
    from loopline.training.distill import distill, logit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 5))
    teacher = 1 / (1 + np.exp(-(2.0 * x[:, 3] - 1.0)))
    config = BoostingConfig(
        num_boost_round=30, num_leaves=7, learning_rate=0.3, min_child_samples=20
    )
    student = distill(teacher, x, [f"f{i}" for i in range(5)], config)
    fresh = rng.normal(size=(1000, 5))
    got = student.predict(fresh)
    want = 2.0 * fresh[:, 3] - 1.0
    assert spearmanr(got, want).statistic > 0.95  # chance: about 0
    assert np.abs(got - want).mean() < 0.3  # it learned the log-odds, not just the order
    assert logit(np.array([0.5]))[0] == pytest.approx(0.0)
    with pytest.raises(ConfigError, match="probability"):
        distill(teacher * 2, x, [f"f{i}" for i in range(5)], config)


def test_the_fraud_sweep_measures_every_lever(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark's fraud sweep, shrunk: each lever gives points, batching keeps the
    teacher's quality, and the distillation summary compares like with like."""
    from loopline.apps.fraud import levers

    monkeypatch.setattr(levers, "TEACHER", (40, 15))
    monkeypatch.setattr(levers, "SIZES", ((10, 7),))
    monkeypatch.setattr(levers, "TOP_FEATURES", (5,))
    monkeypatch.setattr(levers, "BATCHES", (8,))
    monkeypatch.setattr(levers, "STUDENTS", ((10, 7),))
    options = levers.SweepOptions(customers=100, calls=30, unlabelled=False)
    got = levers.sweep(options, load_prices())
    points = {p.name: p for p in got["points"]}
    assert list(points) == [
        "teacher 40x15",
        "trees 10x7",
        "top 5 features",
        "batch 8",
        "student 10x7",
    ]
    teacher = got["points"][0]
    assert points["batch 8"].quality == teacher.quality
    assert points["batch 8"].settings["batch"] == 8
    assert all(0 < p.quality <= 1 and p.cost_per_million > 0 for p in points.values())
    row = got["distillation"]["10x7"]
    assert row["labels_only"]["average_precision"] == round(points["trees 10x7"].quality, 4)
    assert row["distilled"]["average_precision"] == round(points["student 10x7"].quality, 4)
    assert set(pareto_front(got["points"])) <= set(points)
