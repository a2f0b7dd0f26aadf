"""The drift monitor against a training reference: quiet on the same distribution, the
shifted feature alone flagged, events when a feature starts and stops drifting."""

from __future__ import annotations

import msgspec
import numpy as np

from loopline.monitoring import DriftCollector, DriftEvent, DriftMonitor, DriftWatch
from loopline.predictions import Recent


def _recent(inputs: dict[str, float], score: float) -> Recent:
    return Recent(msgspec.json.encode(inputs), msgspec.json.encode({"score": score}))


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[Recent]:
    amount = rng.lognormal(3.0 + shift, 1.0, n)
    flag = (rng.random(n) < 0.3).astype(float)
    score = rng.beta(1, 20, n)
    return [
        _recent({"amount": float(a), "new_device": float(f)}, float(s))
        for a, f, s in zip(amount, flag, score, strict=True)
    ]


def test_quiet_on_the_same_distribution_then_flags_only_the_shifted_feature() -> None:
    rng = np.random.default_rng(0)
    ref = _rows(rng, 5000)
    reference = {
        "amount": np.array([msgspec.json.decode(r.inputs)["amount"] for r in ref]),
        "new_device": np.array([msgspec.json.decode(r.inputs)["new_device"] for r in ref]),
        "score": np.array([msgspec.json.decode(r.outputs)["score"] for r in ref]),
    }
    window: list[list[Recent]] = [_rows(rng, 3000)]
    events: list[DriftEvent] = []
    monitor = DriftMonitor(
        reference=reference,
        recent=lambda n, since: window[0][:n],
        model_version="fraud:1",
        publish=events.append,
        window_ms=None,  # the newest rows, however recent
    )
    report = monitor.check()
    assert report is not None
    assert report.drifted == []
    assert {r.feature: r.kind for r in report.results} == {
        "amount": "numeric",
        "new_device": "categorical",
        "score": "numeric",
    }
    assert events == []

    window[0] = _rows(rng, 3000, shift=0.7)  # amounts about twice as large
    report = monitor.check()
    assert report is not None
    assert report.drifted == ["amount"]
    assert [(e.feature, e.drifting) for e in events] == [("amount", True)]
    gauges = {
        (m.name, s.labels["feature"]): s.value
        for m in DriftCollector(DriftWatch(lambda model: monitor, champion=None)).collect()
        for s in m.samples
    }
    assert gauges[("loopline_drift_detected", "amount")] == 1.0
    assert gauges[("loopline_drift_detected", "score")] == 0.0
    assert gauges[("loopline_drift_psi", "amount")] > 0.2

    window[0] = _rows(rng, 3000)
    monitor.check()
    assert [(e.feature, e.drifting) for e in events] == [("amount", True), ("amount", False)]


def test_too_few_recent_rows_give_no_verdict() -> None:
    rng = np.random.default_rng(1)
    reference = {"amount": rng.normal(size=1000), "score": rng.random(1000)}
    few = _rows(rng, 10)
    monitor = DriftMonitor(
        reference=reference, recent=lambda n, since: few, model_version="m:1", window_ms=None
    )
    assert monitor.check() is None
    assert monitor.last is None


def test_the_window_is_the_last_day_and_calendar_features_are_not_compared() -> None:
    rng = np.random.default_rng(2)
    reference = {
        "amount": rng.normal(size=2000),
        "is_weekend": (rng.random(2000) < 2 / 7).astype(float),
        "score": rng.random(2000),
    }
    saturday = [  # a weekend day: all weekend, which is the calendar, not drift
        _recent({"amount": float(a), "is_weekend": 1.0}, float(s))
        for s, a in zip(rng.random(1000), rng.normal(size=1000), strict=True)
    ]
    asked: list[tuple[int, int | None]] = []

    def recent(n: int, since: int | None) -> list[Recent]:
        asked.append((n, since))
        return saturday

    now_s = [1_750_000_000.0]
    monitor = DriftMonitor(
        reference=reference,
        recent=recent,
        model_version="m:1",
        ignore=frozenset({"is_weekend"}),
        clock=lambda: now_s[0],
    )
    now_s[0] += 86_399
    assert monitor.check() is None, "watched for less than a day: no verdict on a part of one"
    assert asked == []
    now_s[0] += 1
    report = monitor.check()
    assert asked == [(monitor.window, int(now_s[0] * 1000) - 86_400_000)]
    assert report is not None
    assert report.checked_ms == int(now_s[0] * 1000)
    assert [r.feature for r in report.results] == ["amount", "score"]
    assert report.drifted == []
    monitor.ignore = frozenset()
    report = monitor.check()
    assert report is not None
    assert report.drifted == ["is_weekend"]
