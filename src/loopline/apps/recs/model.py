"""The recommender, stage by stage: retrieval, ranking, re-ranking, exploration.

:func:`fit` trains it from interactions: the retrievers on all training interactions,
and the LambdaRank ranker on the retrievers' candidates, labelled by interactions the
retrievers did not see (a per-user random fifth of training is held out for it, the
retrievers refitted on the rest, as two-stage systems are trained). :class:`Recommender`
answers one user; :meth:`Recommender.scores` scores every item for offline evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from loopline.apps.recs.data import MovieLens
from loopline.apps.recs.ranking import INPUTS, Items, User, features
from loopline.apps.recs.retrieval import (
    Candidates,
    Retrieval,
    RetrievalConfig,
    best,
    merge,
)
from loopline.apps.recs.split import random_split
from loopline.training import BoostingConfig, train

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Search = Callable[[F32, int], tuple[I64, F32]]  # query vector, n -> items, scores
Ranker = Callable[[F64], F32]

log = logging.getLogger("loopline.apps.recs")
# Chosen on a validation split inside training (never the test): among 3-63 leaves and
# 100-400 rounds, the smallest trees did best; see docs/recs.md.
RANKER = BoostingConfig(
    objective="lambdarank",
    num_boost_round=200,
    learning_rate=0.05,
    num_leaves=3,
    min_child_samples=800,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecsConfig:
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    per_retriever: int = 100  # candidates from each of embedding and co-occurrence
    popular: int = 50  # and from segment popularity
    ranker: BoostingConfig = RANKER
    # the final score: z(ranker) + blend * z(co-occurrence score), within a user's
    # candidates; a tree ensemble's stepwise scores tie many candidates that the
    # co-occurrence model orders (weight chosen on the same validation split)
    blend: float = 1.0


@dataclass(slots=True, kw_only=True)
class Recommender:
    retrieval: Retrieval
    items: Items
    ranker: Ranker | None
    config: RecsConfig = field(default_factory=RecsConfig)

    def candidates(self, user: User, search: Search | None = None) -> tuple[Candidates, list[str]]:
        """Merged candidates, and the stages that failed (``vector_index``)."""
        r, n, degraded = self.retrieval, self.config.per_retriever, []
        exclude = user.history
        lists: list[tuple[I64, F32]] = []
        query = r.query(user.index, user.history, user.session)
        try:
            if search is None:
                found = best(r.item_factors @ query, n, exclude)
                lists.append((found, (r.item_factors[found] @ query).astype(np.float32)))
            else:
                items, scores = search(query, n + len(exclude))
                keep = ~np.isin(items, exclude)
                lists.append((items[keep][:n], scores[keep][:n]))
        except Exception:  # the index is down or slow: co-occurrence and popularity answer
            degraded.append("vector_index")
            lists.append((np.zeros(0, np.int64), np.zeros(0, np.float32)))
        co = r.cooccurrence_scores(user.history)
        found = best(co, n, exclude) if len(user.history) else np.zeros(0, np.int64)
        lists.append((found, co[found]))
        pop = r.segment_popularity[user.segment]
        found = best(pop, self.config.popular, exclude)
        lists.append((found, pop[found]))
        return merge(lists, n), degraded

    def rank(self, c: Candidates, user: User) -> tuple[F32, list[str]]:
        """Scores of the candidates: the ranker's, or, if it fails, retrieval order."""
        if self.ranker is not None and len(c.items):
            try:
                scores = self.ranker(features(c, user, self.retrieval, self.items))
                return _z(scores) + self.config.blend * _z(c.scores[:, 1]), []
            except Exception:  # the ranker failed: retrieval order answers, flagged
                log.exception("ranker failed; answering in retrieval order")
        return retrieval_order(c), ["ranker"] if self.ranker is not None else []

    def scores(self, users: I64, train: sp.csr_matrix, data: MovieLens) -> F32:
        """Every item's score for each user (candidates above the rest), offline."""
        out = np.full((len(users), self.retrieval.n_items), -1e9, dtype=np.float32)
        for row, u in enumerate(users):
            user = user_of(data, int(u), train)
            c, _ = self.candidates(user)
            s, _ = self.rank(c, user)
            out[row, c.items] = s - s.min() + 1.0 if len(s) else s
        return out


def _z(x: F32) -> F32:
    return np.asarray((x - x.mean()) / (x.std() + 1e-9), dtype=np.float32)


def retrieval_order(c: Candidates) -> F32:
    """Without a ranker: the best rank any retriever gave, embedding first on ties."""
    best_rank = c.ranks.min(axis=1)
    return np.asarray(-best_rank - 1e-3 * c.ranks[:, 0], dtype=np.float32)


def user_of(data: MovieLens, u: int, train: sp.csr_matrix, session: I64 | None = None) -> User:
    return User(
        index=u,
        history=train.indices[train.indptr[u] : train.indptr[u + 1]].astype(np.int64),
        session=session if session is not None else np.zeros(0, np.int64),
        age=int(data.age[u]),
        gender=int(data.gender[u]),
        segment=int(data.segment[u]),
    )


def fit(
    data: MovieLens,
    train_matrix: sp.csr_matrix,
    items: Items,
    config: RecsConfig | None = None,
    *,
    seed: int = 0,
) -> tuple[Recommender, object]:
    """The recommender trained on ``train_matrix``, and its LightGBM booster."""
    config = config or RecsConfig()
    u, i = train_matrix.nonzero()
    inner = random_split(u.astype(np.int64), i.astype(np.int64), train_matrix.shape, seed=seed + 1)
    seg = data.segment
    first = Recommender(
        retrieval=Retrieval.fit(inner.train, seg, data.n_segments, config.retrieval),
        items=items,
        ranker=None,
        config=config,
    )
    rows, labels, sizes = [], [], []
    for user in np.flatnonzero(np.diff(inner.test.indptr)):
        who = user_of(data, int(user), inner.train)
        c, _ = first.candidates(who)
        held = inner.test.indices[inner.test.indptr[user] : inner.test.indptr[user + 1]]
        y = np.isin(c.items, held)
        if not y.any():
            continue
        rows.append(features(c, who, first.retrieval, items))
        labels.append(y.astype(np.float64))
        sizes.append(len(c.items))
    booster = train(
        config.ranker, np.vstack(rows), np.concatenate(labels), list(INPUTS), group=sizes
    )
    recommender = Recommender(
        retrieval=Retrieval.fit(train_matrix, seg, data.n_segments, config.retrieval),
        items=items,
        ranker=lambda x: np.asarray(booster.predict(x), dtype=np.float32),
        config=config,
    )
    return recommender, booster


__all__ = ["Recommender", "RecsConfig", "fit", "retrieval_order", "user_of"]
