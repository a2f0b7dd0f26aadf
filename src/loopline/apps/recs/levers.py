"""The recommender's latency, quality and cost levers, each setting measured
(``loopline bench pareto recs``).

Levers: embedding search (exact, as the vector store answers a catalogue this small,
against HNSW graphs of a few ``M`` / ``ef``), the number of candidates each retriever
returns, the ranker (none: retrieval order; fewer or more boosting rounds), and the
embedding dimension (ALS factors).

Quality: NDCG@10 and recall@20 under the offline protocol (MovieLens-100K, per-user
random 80/20, full ranking, training items excluded), with every user's list made by the
request path being measured. Latency: one user's request (candidates, ranker features,
the ranker's bundle loaded the way serving loads a version: ONNX Runtime, one thread;
the top 10), timed one at a time over the test users.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.apps.recs.content import embed
from loopline.apps.recs.data import MovieLens, load
from loopline.apps.recs.evaluation import full_ranking, top_k
from loopline.apps.recs.model import RANKER, Recommender, RecsConfig, Search, fit, user_of
from loopline.apps.recs.ranking import INPUTS, Items, features
from loopline.apps.recs.retrieval import RetrievalConfig
from loopline.apps.recs.split import Split, random_split
from loopline.ops import Point, Prices, candidate_model, cost_per_million, time_calls
from loopline.training import bundle

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Say = Callable[[str], None]
HNSW = ((4, 10), (16, 10), (16, 100), (32, 400))  # (M, ef); hnswlib searches max(ef, k)
CANDIDATES = (10, 25, 50, 200)  # per retriever (the default is 100)
RANKER_ROUNDS = (25, 800)  # the default is 200
FACTORS = (16, 128)  # the default is 64


@dataclass(frozen=True, kw_only=True)
class SweepOptions:
    seed: int = 0
    calls: int = 600  # requests timed per point (test users, cycled)


@dataclass
class _Bench:
    data: MovieLens
    items: Items
    split: Split
    options: SweepOptions
    prices: Prices
    say: Say

    def served(self, config: RecsConfig) -> Recommender:
        """Fit with ``config``; the ranker answered by its ONNX export, as served."""
        self.say(
            f"fitting: {config.retrieval.factors} factors, "
            f"{config.ranker.num_boost_round} ranker rounds"
        )
        rec, booster = fit(self.data, self.split.train, self.items, config, seed=self.options.seed)
        users = np.flatnonzero(np.diff(self.split.test.indptr))[:20]
        check = np.vstack([self._rows(rec, int(u)) for u in users])
        packed, _ = bundle(booster, check)  # type: ignore[arg-type]
        model = candidate_model("pareto", packed)
        assert tuple(model.signature.inputs) == INPUTS  # fit trains on INPUTS, in order

        def ranker(x: F64) -> F32:  # as the service's ranker: the bundle's inputs, in order
            scores, _ = model.predict(np.ascontiguousarray(x))
            return np.asarray(scores, dtype=np.float32).reshape(len(x))

        return replace(rec, ranker=ranker)

    def _rows(self, rec: Recommender, u: int) -> F64:
        user = user_of(self.data, u, self.split.train)
        c, _ = rec.candidates(user)
        return features(c, user, rec.retrieval, self.items)

    def point(
        self,
        name: str,
        lever: str,
        rec: Recommender,
        settings: dict[str, object],
        search: Search | None = None,
    ) -> Point:
        self.say(f"measuring {name}")
        train, data = self.split.train, self.data

        def scores(users: I64) -> F32:
            out = np.full((len(users), data.n_items), -1e9, dtype=np.float32)
            for row, u in enumerate(users):
                user = user_of(data, int(u), train)
                c, _ = rec.candidates(user, search)
                s, _ = rec.rank(c, user)
                out[row, c.items] = s - s.min() + 1.0 if len(s) else s
            return out

        got = full_ranking(scores, train, self.split.test)
        users = np.flatnonzero(np.diff(self.split.test.indptr))

        def request(i: int) -> I64:
            user = user_of(data, int(users[i % len(users)]), train)
            c, _ = rec.candidates(user, search)
            s, _ = rec.rank(c, user)
            return np.asarray(c.items[top_k(s[None, :], min(10, len(s)))[0]], dtype=np.int64)

        timing = time_calls(request, calls=self.options.calls)
        return Point(
            name=name,
            lever=lever,
            settings=settings,
            latency_p50_ms=timing.p50_ms,
            latency_p99_ms=timing.p99_ms,
            quality=got["ndcg_at_10"],
            cost_per_million=cost_per_million(timing.cpu_s_per_prediction, self.prices),
            figures={
                "recall_at_20": got["recall_at_20"],
                "cpu_ms_per_request": timing.cpu_s_per_prediction * 1e3,
            },
        )


def hnsw(item_factors: F32, m: int, ef: int) -> Search:
    """A search over an HNSW graph (hnswlib, inner product) of the item vectors."""
    import hnswlib

    graph = hnswlib.Index(space="ip", dim=item_factors.shape[1])
    graph.init_index(max_elements=len(item_factors), M=m, ef_construction=128, random_seed=0)
    graph.add_items(item_factors, np.arange(len(item_factors)))
    graph.set_ef(ef)
    graph.set_num_threads(1)

    def search(query: F32, n: int) -> tuple[I64, F32]:
        labels, distances = graph.knn_query(query[None, :], k=min(n, len(item_factors)))
        return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)

    return search


def sweep(options: SweepOptions, prices: Prices, say: Say = lambda _: None) -> dict[str, Any]:
    """Every lever's points (the first is the production configuration)."""
    say("loading MovieLens-100K and its content embeddings")
    data = load()
    content = embed([data.item_text(i) for i in range(data.n_items)])
    items = Items(genres=data.genres, year=data.year, content=content)
    split = random_split(data.user, data.item, (data.n_users, data.n_items), seed=options.seed)
    bench = _Bench(data, items, split, options, prices, say)
    base = RecsConfig()
    rec = bench.served(base)
    default = {
        "search": "exact",
        "candidates": base.per_retriever,
        "ranker_rounds": base.ranker.num_boost_round,
        "factors": base.retrieval.factors,
    }
    points = [bench.point("production", "search", rec, default)]
    for m, ef in HNSW:
        search = hnsw(rec.retrieval.item_factors, m, ef)
        settings = default | {"search": "hnsw", "M": m, "ef": ef}
        points.append(bench.point(f"hnsw M={m} ef={ef}", "search", rec, settings, search))
    for n in CANDIDATES:
        fewer = replace(rec, config=replace(base, per_retriever=n))
        settings = default | {"candidates": n}
        points.append(bench.point(f"candidates {n}", "candidates", fewer, settings))
    bare = replace(rec, ranker=None)
    points.append(bench.point("no ranker", "ranker", bare, default | {"ranker_rounds": 0}))
    for rounds in RANKER_ROUNDS:
        config = replace(base, ranker=replace(RANKER, num_boost_round=rounds))
        settings = default | {"ranker_rounds": rounds}
        points.append(
            bench.point(f"ranker {rounds} rounds", "ranker", bench.served(config), settings)
        )
    for factors in FACTORS:
        config = replace(base, retrieval=RetrievalConfig(factors=factors))
        settings = default | {"factors": factors}
        points.append(
            bench.point(f"factors {factors}", "embedding", bench.served(config), settings)
        )
    data_figures = {
        "data": "MovieLens-100K",
        "users": data.n_users,
        "items": data.n_items,
        "test_users": int(np.count_nonzero(np.diff(split.test.indptr))),
        "seed": options.seed,
    }
    return {"points": points, "data": data_figures}
