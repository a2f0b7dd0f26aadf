"""A user simulator for online evaluation on MovieLens-100K: who clicks what they are
shown. It is a simulator, not real user behaviour: a preference model fitted on the
data stands in for the users, so that exploration, A/B tests and interleaving can be run
and measured offline. Its absolute click rates are a modelling choice; compare arms
against each other on it, not against a live system.

**Ground truth.** Two strong models are fitted on all 100,000 interactions: ALS
(``implicit``, 64 factors, 15 iterations) and EASE (L2 250). Each model's scores are
standardised per user (over all items), the two are summed and standardised again, so
neither model alone is the truth (both are retrievers of the pipeline it evaluates; a
ranker of either family is still favoured somewhat). The standardised score ``z`` becomes
an attraction probability by a logistic, ``sigmoid(SLOPE * (z - OFFSET))`` with
``SLOPE = 1.5``, ``OFFSET = 3.5``.

**Position bias** (the position-based click model): slot ``r`` (0-based) is examined with
probability ``1 / (1 + r) ** eta``, and a click is Bernoulli(examination x attraction),
independently per slot.

**Repeat fatigue.** An item the user already clicked in the session (``clicked``, kept by
the caller) is not clickable again; a slate that shows one item twice is refused.

**Calibration** (``seed=0``, ``eta=1``, measured; a slot's click rate is expected clicks
over 10 slots, at most 0.293, the mean examination of slots 0-9):

=================================================================  ================
slate in slots 0-9                                                 clicks per slot
=================================================================  ================
the user's own 10 most attractive interactions                     0.267
10 of the user's own interactions at random                        0.132
10 random items                                                    0.008
EASE / ItemKNN / MostPop trained on a random 80 %, train excluded  0.197 / 0.172 / 0.083
the 10 most attractive items outside that 80 % (an oracle)         0.236
=================================================================  ================

The mean attraction of a random (user, item) is 0.028. Fitting takes about 3.5 s on two
cores; attraction is kept as a dense float32 users x items matrix (6 MB).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from loopline.apps.recs.data import MovieLens
from loopline.apps.recs.split import matrix
from loopline.exceptions import ConfigError

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
SLOPE = 1.5  # of the logistic on the per-user standardised score
OFFSET = 3.5  # the standardised score at which attraction is 0.5


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class UserSimulator:
    """Simulated users: their attraction to each item, and position-biased clicks.

    Args:
        preferences: ``(n_users, n_items)`` attraction probabilities in [0, 1].
        activity: Each user's weight when sampling users (their interaction count).
        eta: The position bias: slot ``r`` is examined with probability
            ``1 / (1 + r) ** eta`` (0: every slot is examined).

    Example:
        >>> sim = UserSimulator(preferences=np.full((2, 3), 0.5, np.float32),
        ...                     activity=np.ones(2))
        >>> sim.expected_clicks(0, [2, 1])
        0.75
    """

    preferences: F32
    activity: F64
    eta: float = 1.0

    def __post_init__(self) -> None:
        p = self.preferences
        if p.ndim != 2 or not (np.all(p >= 0) and np.all(p <= 1)):
            raise ConfigError(
                "The 'preferences' of UserSimulator must be a 2-D matrix of probabilities "
                "in [0, 1]."
            )
        if (
            self.activity.shape != (p.shape[0],)
            or np.any(self.activity < 0)
            or self.activity.sum() <= 0
        ):
            raise ConfigError(
                f"The 'activity' of UserSimulator must be {p.shape[0]} non-negative weights, "
                f"not all 0. Got shape {self.activity.shape}."
            )
        if not self.eta >= 0:
            raise ConfigError(f"The 'eta' of UserSimulator must be >= 0. Got {self.eta}.")

    @classmethod
    def fit(cls, data: MovieLens, *, seed: int = 0, eta: float = 1.0) -> UserSimulator:
        """The ground truth fitted on every interaction of ``data`` (see the module)."""
        x = matrix(data.user, data.item, (data.n_users, data.n_items))
        z = _standardise(_standardise(_als_scores(x, seed)) + _standardise(_ease_scores(x)))
        preferences = 1.0 / (1.0 + np.exp(-SLOPE * (z - OFFSET)))
        activity = np.bincount(data.user, minlength=data.n_users).astype(np.float64)
        return cls(preferences=preferences.astype(np.float32), activity=activity, eta=eta)

    @property
    def n_users(self) -> int:
        return int(self.preferences.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.preferences.shape[1])

    def examination(self, n: int) -> F64:
        """The probability that each of slots ``0..n-1`` is looked at."""
        return np.asarray(1.0 / (1.0 + np.arange(n)) ** self.eta, dtype=np.float64)

    def attraction(self, user: int, items: npt.ArrayLike) -> F32:
        """The probability that ``user`` clicks each of ``items`` once they look at it."""
        self._check_user(user)
        return np.array(self.preferences[user, self._check_items(items)], dtype=np.float32)

    def clicks(
        self,
        user: int,
        shown: Sequence[int],
        rng: np.random.Generator,
        *,
        clicked: Collection[int] = (),
    ) -> npt.NDArray[np.bool_]:
        """One impression of the slate ``shown`` (best slot first): which slots
        ``user`` clicks. Items in ``clicked`` (clicked earlier in the session) are not
        clickable."""
        p = self._click_probabilities(user, shown, clicked)
        return np.asarray(rng.random(len(p)) < p, dtype=np.bool_)

    def expected_clicks(
        self, user: int, shown: Sequence[int], *, clicked: Collection[int] = ()
    ) -> float:
        """The mean number of clicks :meth:`clicks` gives on ``shown``."""
        return float(self._click_probabilities(user, shown, clicked).sum())

    def users(self, n: int, rng: np.random.Generator) -> I64:
        """``n`` users drawn with replacement in proportion to their activity."""
        weights = self.activity / self.activity.sum()
        return np.asarray(rng.choice(self.n_users, size=n, p=weights), dtype=np.int64)

    def _click_probabilities(
        self, user: int, shown: Sequence[int], clicked: Collection[int]
    ) -> F64:
        items = self._check_items(shown)
        if len(np.unique(items)) != len(items):
            raise ConfigError(
                f"A slate shows each item once. Got {items.tolist()} for user {user}."
            )
        self._check_user(user)
        attraction = self.preferences[user, items].astype(np.float64)
        if clicked:
            attraction[np.isin(items, np.fromiter(clicked, dtype=np.int64))] = 0.0
        return np.asarray(self.examination(len(items)) * attraction, dtype=np.float64)

    def _check_user(self, user: int) -> None:
        if not 0 <= user < self.n_users:
            raise ConfigError(f"user must be an index in [0, {self.n_users}). Got {user}.")

    def _check_items(self, items: npt.ArrayLike) -> I64:
        idx = np.asarray(items, dtype=np.int64).ravel()
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n_items):
            raise ConfigError(
                f"Items must be indices in [0, {self.n_items}). Got {idx.tolist()[:20]}."
            )
        return idx


def _standardise(scores: npt.NDArray[np.floating]) -> F64:
    """Each row to mean 0 and standard deviation 1."""
    s = np.asarray(scores, dtype=np.float64)
    std = s.std(axis=1, keepdims=True)
    return np.asarray(
        (s - s.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0), dtype=np.float64
    )


def _als_scores(x: sp.csr_matrix, seed: int) -> F32:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads would fight them
        als = AlternatingLeastSquares(
            factors=64, iterations=15, random_state=seed, calculate_training_loss=False
        )
        als.fit(x.astype(np.float32), show_progress=False)
    return np.asarray(als.user_factors @ als.item_factors.T, dtype=np.float32)


def _ease_scores(x: sp.csr_matrix) -> F32:
    from loopline.apps.recs.baselines import EASE

    return EASE().fit(x).scores(np.arange(x.shape[0], dtype=np.int64))
