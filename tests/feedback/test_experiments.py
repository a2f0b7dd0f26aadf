from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from loopline.exceptions import ConfigError
from loopline.feedback import (
    Interleaved,
    ab_test,
    assign,
    credit,
    interleaving_test,
    team_draft,
)
from loopline.serving import Routing

# --- A/B tests -----------------------------------------------------------------------


def test_welch_agrees_with_scipy_on_known_arrays() -> None:
    control = np.array([0.10, 0.00, 0.25, 0.20, 0.05, 0.15, 0.30, 0.00])
    treatment = np.array([0.30, 0.20, 0.45, 0.10, 0.35, 0.40, 0.25, 0.50, 0.15, 0.60])
    r = ab_test(control, treatment)
    expected = stats.ttest_ind(treatment, control, equal_var=False)
    assert r.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert (r.n_control, r.n_treatment) == (8, 10)
    assert r.difference == pytest.approx(treatment.mean() - control.mean())
    assert r.lift == pytest.approx(treatment.mean() / control.mean() - 1)
    ci = expected.confidence_interval(0.95)  # scipy's Welch interval, same df
    assert r.difference_ci == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert r.df == pytest.approx(expected.df, rel=1e-12)
    assert r.significant
    assert r.winner == "treatment"
    assert r.lift_ci[0] < r.lift < r.lift_ci[1]


def test_the_interval_excludes_zero_exactly_when_significant() -> None:
    rng = np.random.default_rng(3)
    for shift in np.linspace(0.0, 0.5, 11):
        r = ab_test(rng.normal(0, 1, 40), rng.normal(shift, 1, 40))
        lo, hi = r.difference_ci
        assert r.significant == (lo > 0 or hi < 0)


def test_an_aa_test_is_significant_about_alpha_of_the_time() -> None:
    rng = np.random.default_rng(0)
    false_positives = 0
    for _ in range(200):
        # per-user CTRs: clicks over a user's impressions, same rate in both arms
        shown = rng.integers(5, 40, size=(2, 300))
        ctr = rng.binomial(shown, 0.1) / shown
        false_positives += ab_test(ctr[0], ctr[1]).significant
    assert 0.01 <= false_positives / 200 < 0.1


def test_an_ab_test_detects_a_real_lift_and_names_the_winner() -> None:
    rng = np.random.default_rng(1)
    shown = rng.integers(5, 40, size=(2, 2000))
    control = rng.binomial(shown[0], 0.10) / shown[0]
    treatment = rng.binomial(shown[1], 0.12) / shown[1]  # +20 %
    r = ab_test(control, treatment)
    assert r.significant
    assert r.winner == "treatment"
    assert r.p_value < 1e-3
    assert r.lift_ci[0] < 0.2 < r.lift_ci[1]
    assert ab_test(treatment, control).winner == "control"


def test_constant_arms_need_no_test() -> None:
    same = ab_test([0.0, 0.0, 0.0], [0.0, 0.0])
    assert (same.p_value, same.significant, same.winner) == (1.0, False, None)
    assert math.isnan(same.lift)
    apart = ab_test([0.1, 0.1], [0.2, 0.2])
    assert apart.significant
    assert apart.winner == "treatment"
    assert apart.difference_ci == pytest.approx((0.1, 0.1))


@pytest.mark.parametrize(
    ("control", "treatment", "named"),
    [
        ([0.1], [0.1, 0.2], "'control'"),
        ([0.1, 0.2], [], "'treatment'"),
        ([0.1, np.nan], [0.1, 0.2], "'control'"),
    ],
)
def test_an_arm_too_small_or_not_finite_is_refused_by_name(
    control: list[float], treatment: list[float], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        ab_test(control, treatment)


def test_alpha_is_checked() -> None:
    with pytest.raises(ConfigError, match="alpha"):
        ab_test([0.1, 0.2], [0.1, 0.2], alpha=1.5)


# --- team-draft interleaving ----------------------------------------------------------


def test_team_draft_gives_k_distinct_items_each_team_in_its_own_order() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = [int(i) for i in rng.permutation(30)[:15]]
        b = [int(i) for i in rng.permutation(30)[:15]]
        k = int(rng.integers(1, 16))
        merged = team_draft(a, b, k, rng)
        assert len(merged.items) == len(merged.teams) == k
        assert len(set(merged.items)) == k
        for team, ranking in (("a", a), ("b", b)):
            mine = [i for i, t in zip(merged.items, merged.teams, strict=True) if t == team]
            assert all(i in ranking for i in mine)
            assert [ranking.index(i) for i in mine] == sorted(ranking.index(i) for i in mine)
        # the teams' sizes differ by at most one at every prefix
        balance = np.cumsum([1 if t == "a" else -1 for t in merged.teams])
        assert np.abs(balance).max() <= 1


def test_team_draft_of_identical_rankings_is_the_ranking() -> None:
    merged = team_draft(list("abcdef"), list("abcdef"), 4, np.random.default_rng(0))
    assert merged.items == tuple("abcd")


def test_team_draft_fills_from_the_longer_ranking_when_one_runs_out() -> None:
    merged = team_draft([1], [2, 3, 4], 10, np.random.default_rng(0))
    assert sorted(merged.items) == [1, 2, 3, 4]
    assert merged.teams.count("a") == 1
    with pytest.raises(ConfigError, match="k must"):
        team_draft([1], [2], 0, np.random.default_rng(0))


def test_credit_counts_clicks_per_team() -> None:
    merged = Interleaved(items=(10, 20, 30, 40), teams=("a", "b", "b", "a"))
    assert credit(merged, []) == 0
    assert credit(merged, [0]) == 1
    assert credit(merged, [1, 2, 3]) == -1
    assert credit(merged, [0, 1]) == 0
    with pytest.raises(ConfigError, match=r"\[4\]"):
        credit(merged, [4])


def _impressions(better: list[int], worse: list[int], n: int, seed: int) -> list[int]:
    """Users who click an item with probability by its true relevance (items 0..19
    relevant, decreasing), seen with position bias 1 / (1 + slot)."""
    rng = np.random.default_rng(seed)
    outcomes = []
    for _ in range(n):
        merged = team_draft(better, worse, 10, rng)
        relevance = np.array([max(0.0, 0.6 - 0.03 * i) for i in merged.items])
        seen = 1 / (1 + np.arange(len(merged.items)))
        clicked = np.flatnonzero(rng.random(len(merged.items)) < seen * relevance)
        outcomes.append(credit(merged, clicked.tolist()))
    return outcomes


def test_a_strictly_better_ranking_wins() -> None:
    better = list(range(20))  # by construction: most relevant first
    worse = list(range(10, 30))  # shifted: the 10 most relevant never appear
    r = interleaving_test(_impressions(better, worse, 500, seed=0))
    assert r.p_value < 0.01
    assert r.winner == "a"
    assert r.delta > 0
    assert r.wins_a + r.wins_b + r.ties == 500
    flipped = interleaving_test(_impressions(worse, better, 500, seed=1))
    assert flipped.winner == "b"
    assert flipped.delta < 0


def test_identical_rankings_show_no_preference() -> None:
    same = list(range(20))
    runs = [interleaving_test(_impressions(same, list(same), 200, seed=s)) for s in range(100)]
    assert abs(np.mean([r.delta for r in runs])) < 0.02
    assert np.mean([r.significant for r in runs]) < 0.1  # about alpha: an A/A test


def test_interleaving_test_refuses_bad_outcomes() -> None:
    with pytest.raises(ConfigError, match="empty"):
        interleaving_test([])
    with pytest.raises(ConfigError, match=r"\[2\]"):
        interleaving_test([1, 0, 2])
    assert interleaving_test([0, 0]).p_value == 1.0


def test_the_sign_test_is_scipys_binomial_test() -> None:
    r = interleaving_test([1] * 14 + [-1] * 4 + [0] * 7)
    assert r.p_value == pytest.approx(stats.binomtest(14, 18, 0.5).pvalue)
    assert r.delta == pytest.approx(10 / 25)


# --- assignment -----------------------------------------------------------------------


def test_assign_is_stable_and_takes_its_share() -> None:
    users = [f"user-{i}" for i in range(20_000)]
    first = [assign(u, salt="exp-1", share=0.3) for u in users]
    assert first == [assign(u, salt="exp-1", share=0.3) for u in users]
    assert abs(np.mean(first) - 0.3) < 0.015
    other = np.array([assign(u, salt="exp-2", share=0.3) for u in users])
    # a new salt reshuffles: independent of the first experiment's split
    assert abs(other[np.array(first)].mean() - 0.3) < 0.03
    # a larger share keeps every unit the smaller one had
    assert all(assign(u, salt="exp-1", share=0.5) for u, on in zip(users, first, strict=True) if on)
    assert not any(assign(u, salt="x", share=0.0) for u in users[:100])
    assert all(assign(u, salt="x", share=1.0) for u in users[:100])


def test_assign_without_salt_buckets_as_the_canary_routing_does() -> None:
    champion, challenger = object(), object()
    routing = Routing(champion=champion, challenger=challenger, canary_percent=25.0)  # type: ignore[arg-type]
    for i in range(2000):
        key = f"key-{i}"
        assert assign(key, salt="", share=0.25) == (routing.pick(key)[0] is challenger)


def test_assign_checks_its_options() -> None:
    with pytest.raises(ConfigError, match="share"):
        assign("u", salt="s", share=1.5)
    with pytest.raises(ConfigError, match="salt"):
        assign("u", salt="s" * 65, share=0.5)
