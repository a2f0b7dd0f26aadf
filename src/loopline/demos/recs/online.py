"""Online evaluation against the user simulator: sessions, an A/B test on per-user
click-through rate, team-draft interleaving, and exploration's effect.

The simulator (:mod:`loopline.apps.recs.simulator`) stands in for users: its clicks are
a preference model's, with position bias; every figure here is about the simulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from loopline.apps.recs.data import MovieLens
from loopline.apps.recs.model import Recommender, user_of
from loopline.apps.recs.rerank import Genres, Page, RerankConfig, Thompson, page
from loopline.apps.recs.simulator import UserSimulator
from loopline.feedback import (
    ABResult,
    InterleavingResult,
    ab_test,
    assign,
    credit,
    interleaving_test,
    team_draft,
)

I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class Log:
    """What the sessions showed and what was clicked, per user; request latencies."""

    impressions: dict[int, int] = field(default_factory=dict)
    clicks: dict[int, int] = field(default_factory=dict)
    clicked: list[tuple[int, int]] = field(default_factory=list)  # (user, item)
    shown: set[int] = field(default_factory=set)
    latency_ms: list[float] = field(default_factory=list)
    ctr_by_block: list[float] = field(default_factory=list)

    def ctr(self, users: I64 | None = None) -> npt.NDArray[np.float64]:
        who = self.impressions if users is None else {int(u): 0 for u in users}
        return np.asarray([self.clicks.get(u, 0) / self.impressions[u] for u in who if
                           self.impressions.get(u)], dtype=np.float64)  # fmt: skip


def recommend(
    rec: Recommender,
    data: MovieLens,
    train: sp.csr_matrix,
    u: int,
    k: int,
    config: RerankConfig,
    bandit: Thompson | None,
) -> Page:
    """The whole request path of one user, in process."""
    user = user_of(data, u, train)
    c, _ = rec.candidates(user)
    scores, _ = rec.rank(c, user)
    return page(c.items, scores, k, genres=Genres.of(data.genres), config=config, bandit=bandit)


def run_sessions(
    choose: Callable[[int], Recommender],
    sim: UserSimulator,
    data: MovieLens,
    train: sp.csr_matrix,
    *,
    sessions: int,
    k: int = 10,
    config: RerankConfig | None = None,
    bandit: Thompson | None = None,
    seed: int = 0,
    blocks: int = 5,
) -> Log:
    """``sessions`` impressions of ``k`` items to simulated users (``choose`` says which
    model answers a user); clicks are kept as new interactions and fed to the bandit."""
    config = config or RerankConfig()
    rng = np.random.default_rng(seed)
    log = Log()
    block_clicks = block_shown = 0
    for n, u in enumerate(sim.users(sessions, rng)):
        started = time.perf_counter()
        shown = recommend(choose(int(u)), data, train, int(u), k, config, bandit)
        log.latency_ms.append((time.perf_counter() - started) * 1000)
        hits = sim.clicks(int(u), shown.items.tolist(), rng)
        log.impressions[int(u)] = log.impressions.get(int(u), 0) + len(shown.items)
        log.clicks[int(u)] = log.clicks.get(int(u), 0) + int(hits.sum())
        log.clicked += [(int(u), int(i)) for i in shown.items[hits]]
        log.shown.update(shown.items.tolist())
        block_clicks, block_shown = block_clicks + int(hits.sum()), block_shown + len(hits)
        if bandit is not None:
            for item, hit in zip(shown.items.tolist(), hits.tolist(), strict=True):
                bandit.update(item, impressions=1, clicks=int(hit))
        if (n + 1) % max(1, sessions // blocks) == 0:
            log.ctr_by_block.append(block_clicks / max(block_shown, 1))
            block_clicks = block_shown = 0
    return log


@dataclass(frozen=True, slots=True)
class Experiment:
    ab: ABResult
    interleaving: InterleavingResult
    control_ctr: float
    treatment_ctr: float


def experiment(
    control: Recommender,
    treatment: Recommender,
    sim: UserSimulator,
    data: MovieLens,
    train: sp.csr_matrix,
    *,
    sessions: int,
    k: int = 10,
    seed: int = 0,
) -> Experiment:
    """An A/B test (users split by a stable hash; Welch's test on per-user CTR) and, on
    as many other sessions, team-draft interleaving of the two rankings."""
    arm = {u: assign(str(u), salt="recs-ab", share=0.5) for u in range(data.n_users)}
    log = run_sessions(
        lambda u: treatment if arm[u] else control, sim, data, train,
        sessions=sessions, k=k, seed=seed,
    )  # fmt: skip
    users = np.asarray(list(log.impressions), dtype=np.int64)
    treated = np.asarray([arm[int(u)] for u in users])
    ab = ab_test(log.ctr(users[~treated]), log.ctr(users[treated]))
    rng = np.random.default_rng(seed + 1)
    config = RerankConfig()
    outcomes = []
    for u in sim.users(sessions, rng):
        a = recommend(control, data, train, int(u), k, config, None).items.tolist()
        b = recommend(treatment, data, train, int(u), k, config, None).items.tolist()
        mixed = team_draft(a, b, k, rng)
        hits = sim.clicks(int(u), list(mixed.items), rng)
        outcomes.append(credit(mixed, set(np.flatnonzero(hits).tolist())))
    return Experiment(ab, interleaving_test(outcomes), ab.mean_control, ab.mean_treatment)
