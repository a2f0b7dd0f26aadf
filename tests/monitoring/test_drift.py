"""Drift tests against samples with known shifts, and none: large samples of the same
distribution raise nothing, across many features at once."""

from __future__ import annotations

import numpy as np
import pytest

from loopline.monitoring import FixedBins, categorical, compare, numeric, psi


def test_same_distribution_is_not_drift_even_at_volume() -> None:
    rng = np.random.default_rng(0)
    results = compare(
        [numeric(f"f{i}", rng.normal(size=100_000), rng.normal(size=100_000)) for i in range(30)]
    )
    assert [r.feature for r in results if r.drifted] == []
    assert max(r.psi or 0 for r in results) < 0.01


def test_a_shifted_mean_and_a_changed_spread_are_drift() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=50_000)
    shifted = numeric("shifted", ref, rng.normal(0.5, 1, 20_000))
    wider = numeric("wider", ref, rng.normal(0, 2, 20_000))
    same = numeric("same", ref, rng.normal(size=20_000))
    results = {r.feature: r for r in compare([shifted, wider, same])}
    assert results["shifted"].drifted
    assert results["shifted"].psi is not None
    assert results["shifted"].psi > 0.2
    assert results["wider"].drifted
    assert not results["same"].drifted


def test_a_tiny_but_significant_shift_is_not_an_alarm() -> None:
    rng = np.random.default_rng(2)
    r = numeric("f", rng.normal(size=400_000), rng.normal(0.03, 1, 400_000))
    (checked,) = compare([r])
    assert checked.p_value < 1e-6, "significant at this volume"
    assert not checked.drifted, "but too small to matter"


def test_categories() -> None:
    ref = {"cp": 7000, "cnp": 3000}
    assert not compare([categorical("channel", ref, {"cp": 6980, "cnp": 3020})])[0].drifted
    moved = compare([categorical("channel", ref, {"cp": 5000, "cnp": 5000})])[0]
    assert moved.drifted
    assert moved.statistic > 0.1
    new = compare([categorical("currency", {"EUR": 1000}, {"EUR": 800, "USD": 200})])[0]
    assert new.drifted, "a category never seen in training"


def test_fixed_bins_count_on_the_hot_path_like_the_sample_test() -> None:
    rng = np.random.default_rng(3)
    ref = rng.lognormal(3, 1, 20_000)
    bins = FixedBins.from_reference(ref)
    now = bins.empty_like()
    cur = rng.lognormal(3.4, 1, 10_000)
    for chunk in np.array_split(cur, 10):  # batches as they are scored
        now.add(chunk)
    assert now.counts.sum() == 10_000
    assert psi(bins.counts, now.counts) == pytest.approx(numeric("x", ref, cur).psi)
    with_nan = bins.empty_like()
    with_nan.add([np.nan, 1.0])
    assert with_nan.counts[-1] == 1


def test_a_feature_gone_missing_drifts_on_its_missing_rate() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=5000)
    gone = np.full(2000, np.nan)  # e.g. an upstream join broke
    result = compare([numeric("card_age_days", reference, gone)])[0]
    assert result.drifted
    assert result.p_value < 1e-10
