"""Offline evaluation of the whole recommender against its baselines, in one run.

- **Quality**: per-user random 80/20 and temporal (each user's last fifth) splits, full
  ranking with training items excluded (RecBole's protocol): NDCG@10 and recall@20 of
  the pipeline, EASE, ItemKNN and MostPop on the same split.
- **Cold items**: a tenth of the catalogue is withheld from training; each user's
  held-out interactions with those items are to be found among them. The pipeline
  scores a cold item through its content embedding mapped into the embedding space
  (:class:`~loopline.apps.recs.content.ContentMap`) plus its content similarity to the
  user's history; the baseline ranks them by the popularity of their genres.
- **Coverage and diversity** of the top 10, with and without the re-ranker: the share
  of the catalogue recommended to anyone, and the mean pairwise genre dissimilarity
  within a list (1 - cosine of the genre vectors).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from loopline.apps.recs.baselines import EASE, ItemKNN, MostPop
from loopline.apps.recs.content import ContentMap
from loopline.apps.recs.data import MovieLens
from loopline.apps.recs.evaluation import full_ranking, top_k
from loopline.apps.recs.model import Recommender, RecsConfig, fit, user_of
from loopline.apps.recs.ranking import Items
from loopline.apps.recs.rerank import Genres, RerankConfig, mmr
from loopline.apps.recs.retrieval import Retrieval
from loopline.apps.recs.split import matrix, random_split, temporal_split

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Progress = Callable[[str], None]


def quality(
    data: MovieLens,
    items: Items,
    *,
    config: RecsConfig | None = None,
    seed: int = 0,
    progress: Progress = lambda _: None,
) -> dict[str, float]:
    shape = (data.n_users, data.n_items)
    split = random_split(data.user, data.item, shape, seed=seed)
    out: dict[str, float] = {}
    for name, model in (("mostpop", MostPop()), ("itemknn", ItemKNN()), ("ease", EASE())):
        progress(f"baseline {name}")
        got = full_ranking(model.fit(split.train).scores, split.train, split.test)
        out[f"{name}_ndcg_at_10"], out[f"{name}_recall_at_20"] = _pick(got)
    progress("pipeline (random split)")
    rec, _ = fit(data, split.train, items, config, seed=seed)
    got = full_ranking(lambda u: rec.scores(u, split.train, data), split.train, split.test)
    out["ndcg_at_10"], out["recall_at_20"] = _pick(got)
    progress("pipeline (temporal split)")
    temporal = temporal_split(data.user, data.item, data.time_s, shape)
    rec_t, _ = fit(data, temporal.train, items, config, seed=seed)
    got = full_ranking(
        lambda u: rec_t.scores(u, temporal.train, data), temporal.train, temporal.test
    )
    out["temporal_ndcg_at_10"], out["temporal_recall_at_20"] = _pick(got)
    got = full_ranking(EASE().fit(temporal.train).scores, temporal.train, temporal.test)
    out["temporal_ease_ndcg_at_10"], _ = _pick(got)
    rerank = coverage_and_diversity(rec, data, split.train)
    return {**out, **rerank}


def _pick(got: dict[str, float]) -> tuple[float, float]:
    return round(got["ndcg_at_10"], 4), round(got["recall_at_20"], 4)


def cold_items(
    data: MovieLens,
    content: F32,
    *,
    config: RecsConfig | None = None,
    share: float = 0.1,
    seed: int = 0,
) -> dict[str, float]:
    """``cold_item_recall_at_20`` and the genre-popularity baseline's."""
    config = config or RecsConfig()
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(data.n_items, int(share * data.n_items), replace=False))
    is_cold = np.zeros(data.n_items, dtype=bool)
    is_cold[cold] = True
    warm = ~is_cold[data.item]
    shape = (data.n_users, data.n_items)
    train = matrix(data.user[warm], data.item[warm], shape)
    test = matrix(data.user[~warm], data.item[~warm], shape)
    r = Retrieval.fit(train, data.segment, data.n_segments, config.retrieval)
    seen = np.flatnonzero(np.asarray(train.sum(axis=0)).ravel() > 0)
    projected = ContentMap.fit(content[seen], r.item_factors[seen])(content[cold])
    sub_test = test[:, cold]
    taste = _normalise(np.asarray(train @ content))  # each user's content profile

    def pipeline(users: I64) -> F32:
        cf = r.user_factors[users] @ projected.T
        cf = (cf - cf.mean(axis=1, keepdims=True)) / (cf.std(axis=1, keepdims=True) + 1e-9)
        sim = taste[users] @ content[cold].T
        sim = (sim - sim.mean(axis=1, keepdims=True)) / (sim.std(axis=1, keepdims=True) + 1e-9)
        return np.asarray(cf + sim, dtype=np.float32)

    genre_pop = (
        np.asarray(train.sum(axis=0)).ravel() @ data.genres / data.genres.sum(axis=0).clip(1)
    )
    prior = (data.genres[cold] @ genre_pop) / data.genres[cold].sum(axis=1).clip(1)

    def popularity(users: I64) -> F32:
        return np.asarray(np.broadcast_to(prior, (len(users), len(cold))), dtype=np.float32)

    empty = sp.csr_matrix(sub_test.shape, dtype=np.float32)
    ours = full_ranking(pipeline, empty, sub_test.tocsr(), ks=(20,))
    base = full_ranking(popularity, empty, sub_test.tocsr(), ks=(20,))
    return {
        "cold_item_recall_at_20": round(ours["recall_at_20"], 4),
        "baseline_cold_item_recall_at_20": round(base["recall_at_20"], 4),
        "cold_items": float(len(cold)),
    }


def _normalise(x: npt.NDArray[np.floating]) -> F32:
    return np.asarray(x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9), dtype=np.float32)


def coverage_and_diversity(
    rec: Recommender,
    data: MovieLens,
    train: sp.csr_matrix,
    *,
    k: int = 10,
    rerank: RerankConfig | None = None,
) -> dict[str, float]:
    """Top-``k`` coverage and intra-list diversity, ranked only and re-ranked."""
    rerank = rerank or RerankConfig()
    genres = Genres.of(data.genres)
    plain, diverse = [], []
    for u in range(data.n_users):
        user = user_of(data, u, train)
        c, _ = rec.candidates(user)
        s, _ = rec.rank(c, user)
        plain.append(c.items[top_k(s[None, :], k)[0]])
        unit = genres.unit[c.items]
        first = genres.first[c.items]
        diverse.append(
            mmr(c.items, s, unit @ unit.T, k, rerank.diversity, rerank.max_per_genre, first)
        )
    out = {}
    for name, lists in (("", diverse), ("ranked_only_", plain)):
        out[f"{name}coverage"] = round(len(np.unique(np.concatenate(lists))) / data.n_items, 4)
        out[f"{name}intra_list_diversity"] = round(
            float(np.mean([_ild(genres.unit[items]) for items in lists])), 4
        )
    return out


def _ild(vectors: F32) -> float:
    sim = vectors @ vectors.T
    n = len(vectors)
    return float((n * n - sim.sum()) / (n * (n - 1))) if n > 1 else 0.0


__all__ = ["cold_items", "coverage_and_diversity", "quality"]
