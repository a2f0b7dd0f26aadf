from __future__ import annotations

import numpy as np
import pytest

from loopline.apps.recs.data import MovieLens, load
from loopline.apps.recs.simulator import UserSimulator
from loopline.apps.recs.split import temporal_split
from loopline.exceptions import ConfigError


@pytest.fixture(scope="module")
def data() -> MovieLens:
    return load()


@pytest.fixture(scope="module")
def sim(data: MovieLens) -> UserSimulator:
    return UserSimulator.fit(data, seed=0)


def _slot_click_rate(sim: UserSimulator, user: int, item: int, slot: int, n: int) -> float:
    """How often ``item`` is clicked in ``slot``, the other slots filled with other items."""
    fillers = [i for i in range(sim.n_items) if i != item][:9]
    shown = [*fillers[:slot], item, *fillers[slot:]]
    rng = np.random.default_rng(slot)
    return float(np.mean([sim.clicks(user, shown, rng)[slot] for _ in range(n)]))


def test_position_bias_is_measurable(sim: UserSimulator) -> None:
    user = 0
    item = int(np.argmax(sim.preferences[user]))
    top, bottom = (_slot_click_rate(sim, user, item, slot, 3000) for slot in (0, 9))
    attraction = float(sim.attraction(user, [item])[0])
    assert top == pytest.approx(attraction, abs=0.03)  # slot 0 is always examined
    assert bottom == pytest.approx(attraction / 10, abs=0.02)  # 1 / (1 + 9)
    assert top > 3 * bottom


def test_held_out_items_attract_more_than_random_ones(data: MovieLens, sim: UserSimulator) -> None:
    """Each user's last 20 % of interactions in time (what a temporal split holds out)
    against random items: higher attraction for nearly every user."""
    test = temporal_split(data.user, data.item, data.time_s, (data.n_users, data.n_items)).test
    rng = np.random.default_rng(0)
    held, random = [], []
    for user in range(data.n_users):
        held.append(sim.attraction(user, test[user].indices).mean())
        random.append(sim.attraction(user, rng.integers(0, data.n_items, 50)).mean())
    assert np.mean(held) > 5 * np.mean(random)
    assert np.mean(np.array(held) > np.array(random)) > 0.95


def test_the_documented_calibration(data: MovieLens, sim: UserSimulator) -> None:
    """Clicks per slot on a user's 10 most attractive own items in slots 0-9 are
    0.2-0.4 of the slots; on 10 random items, under 0.02."""
    rng = np.random.default_rng(1)
    own, random = [], []
    for user in range(0, data.n_users, 3):
        items = data.item[data.user == user]
        best = items[np.argsort(-sim.attraction(user, items))[:10]]
        own.append(sim.expected_clicks(user, best.tolist()) / 10)
        shown = rng.choice(data.n_items, 10, replace=False)
        random.append(sim.expected_clicks(user, shown.tolist()) / 10)
    assert 0.2 < np.mean(own) < 0.4
    assert np.mean(random) < 0.02


def test_expected_clicks_is_the_monte_carlo_mean(sim: UserSimulator) -> None:
    user = 5
    shown = np.argsort(-sim.preferences[user])[:10].tolist()
    rng = np.random.default_rng(2)
    counts = np.array([sim.clicks(user, shown, rng).sum() for _ in range(20_000)])
    standard_error = counts.std() / np.sqrt(len(counts))
    assert counts.mean() == pytest.approx(sim.expected_clicks(user, shown), abs=4 * standard_error)


def test_reproducible_with_a_seed(data: MovieLens, sim: UserSimulator) -> None:
    again = UserSimulator.fit(data, seed=0)
    np.testing.assert_array_equal(again.preferences, sim.preferences)
    shown = list(range(10))
    first = [sim.clicks(3, shown, np.random.default_rng(7)) for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])
    np.testing.assert_array_equal(
        sim.users(100, np.random.default_rng(7)), sim.users(100, np.random.default_rng(7))
    )


def test_users_are_drawn_in_proportion_to_their_activity(
    data: MovieLens, sim: UserSimulator
) -> None:
    drawn = sim.users(200_000, np.random.default_rng(3))
    share = np.bincount(drawn, minlength=data.n_users) / len(drawn)
    activity = np.bincount(data.user, minlength=data.n_users) / len(data.user)
    assert np.corrcoef(share, activity)[0, 1] > 0.99
    busiest = int(np.argmax(activity))
    assert share[busiest] == pytest.approx(activity[busiest], rel=0.1)


def test_an_item_clicked_earlier_in_the_session_is_not_clickable(sim: UserSimulator) -> None:
    user = 0
    shown = np.argsort(-sim.preferences[user])[:5].tolist()
    rng = np.random.default_rng(4)
    for _ in range(500):
        assert not sim.clicks(user, shown, rng, clicked={shown[0]})[0]
    without = sim.expected_clicks(user, shown) - sim.expected_clicks(
        user, shown, clicked=[shown[0]]
    )
    assert without == pytest.approx(float(sim.attraction(user, [shown[0]])[0]), rel=1e-6)


# --- small simulators, no fitting -------------------------------------------------------


def _small(eta: float = 1.0) -> UserSimulator:
    preferences = np.array([[0.5, 0.2, 0.9], [0.1, 0.1, 0.1]], dtype=np.float32)
    return UserSimulator(preferences=preferences, activity=np.array([3.0, 1.0]), eta=eta)


def test_the_position_based_click_model() -> None:
    assert _small().expected_clicks(0, [2, 0, 1]) == pytest.approx(0.9 + 0.5 / 2 + 0.2 / 3)
    assert _small(eta=0.0).expected_clicks(0, [2, 0, 1]) == pytest.approx(1.6)
    assert _small(eta=2.0).examination(3) == pytest.approx([1.0, 0.25, 1 / 9])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.clicks(0, [1, 1], np.random.default_rng()), "each item once"),
        (lambda s: s.expected_clicks(2, [0]), r"user must be an index in \[0, 2\)"),
        (lambda s: s.attraction(-1, [0]), "user must"),
        (lambda s: s.attraction(0, [3]), r"Items must be indices in \[0, 3\)"),
    ],
)
def test_bad_users_and_slates_are_refused(call: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call(_small())  # type: ignore[operator]


def test_bad_options_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="'eta'"):
        _small(eta=-1.0)
    with pytest.raises(ConfigError, match="'preferences'"):
        UserSimulator(preferences=np.full((1, 2), 1.5, np.float32), activity=np.ones(1))
    with pytest.raises(ConfigError, match="'activity'"):
        UserSimulator(preferences=np.full((1, 2), 0.5, np.float32), activity=np.ones(2))
