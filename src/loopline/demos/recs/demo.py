"""``loopline demo recs``: the recommendation loop on embedded defaults, in minutes.

1. MovieLens-100K (fetched and checked at first use) and the items' content embeddings.
2. Train version 1 on the older 70 % of interactions (time-ordered), and measure it on
   the newer 30 % stage by stage: retrieval recall, ranking NDCG, re-ranking diversity.
3. Serve simulated users (the simulator says which shown items they click, with
   position bias) with exploration slots; clicks become new interactions.
4. Retrain (version 2) on the old interactions plus the clicks; gate it on offline
   NDCG@10, then on an online A/B test on per-user CTR (Welch) and interleaving.
5. Exploration's effect: coverage and CTR over a long run, with and without.
6. An HTML report: quality by stage, the A/B outcome, coverage and diversity, latency.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from loopline.apps.recs.data import MovieLens
from loopline.apps.recs.evaluation import full_ranking
from loopline.apps.recs.model import Recommender, RecsConfig, fit, user_of
from loopline.apps.recs.offline import coverage_and_diversity
from loopline.apps.recs.rerank import RerankConfig, Thompson
from loopline.apps.recs.retrieval import RetrievalConfig
from loopline.apps.recs.simulator import UserSimulator
from loopline.apps.recs.split import matrix
from loopline.demos.recs.online import experiment, run_sessions
from loopline.demos.recs.report import write
from loopline.demos.recs.world import catalogue


def run(
    out: Path,
    *,
    sessions: int = 2000,
    quick: bool = False,
    config: RecsConfig | None = None,
    say: Any = print,
) -> dict[str, Any]:
    started = time.perf_counter()

    def step(what: str) -> None:
        say(f"[{time.perf_counter() - started:5.1f} s] {what}")

    step("MovieLens-100K and content embeddings (all-MiniLM-L6-v2)")
    data, items = catalogue()
    config = config or RecsConfig(retrieval=RetrievalConfig(iterations=8 if quick else 15))
    cut = np.quantile(data.time_s, 0.7)
    old = data.time_s <= cut
    shape = (data.n_users, data.n_items)
    history = matrix(data.user[old], data.item[old], shape)
    future = matrix(data.user[~old], data.item[~old], shape)
    future = sp.csr_matrix(future - future.multiply(history))
    future.eliminate_zeros()

    step("train version 1 (retrievers + LambdaRank) on the older 70 %")
    v1, _ = fit(data, history, items, config)
    step("simulated users (a preference model with position bias)")
    sim = UserSimulator.fit(data)
    step(f"{sessions} sessions with exploration; clicks become interactions")
    live = run_sessions(lambda _: v1, sim, data, history, sessions=sessions, bandit=Thompson())
    clicked = np.asarray(live.clicked, dtype=np.int64).reshape(-1, 2)
    u, i = history.nonzero()
    grown = matrix(np.r_[u, clicked[:, 0]], np.r_[i, clicked[:, 1]], shape)

    step(f"retrain version 2 on {history.nnz:,} + {len(clicked):,} interactions")
    v2, _ = fit(data, grown, items, config)
    # both judged on the same newer interactions: none the simulated users clicked (v2
    # trained on those, so it may not recommend them, and v1 would get them for free)
    judged = sp.csr_matrix(future - future.multiply(grown))
    judged.eliminate_zeros()
    quality = {"v1": stages(v1, data, history, judged), "v2": stages(v2, data, grown, judged)}
    gate = quality["v2"]["ndcg_at_10"] >= quality["v1"]["ndcg_at_10"] - 0.005
    step("A/B test and interleaving of version 2 against version 1")
    ab = experiment(v1, v2, sim, data, history, sessions=sessions)
    promoted = gate and ab.ab.winner != "control"

    step("exploration: the same long run with and without Thompson sampling")
    explore = {}
    for name, bandit in (("with", Thompson(seed=1)), ("without", None)):
        log = run_sessions(lambda _: v1, sim, data, history, sessions=sessions, bandit=bandit,
                           seed=7)  # fmt: skip
        explore[name] = {
            "coverage": round(len(log.shown) / data.n_items, 4),
            "ctr": round(sum(log.clicks.values()) / sum(log.impressions.values()), 4),
            "ctr_by_block": [round(c, 4) for c in log.ctr_by_block],
        }
    result = {
        "quality": quality,
        "gate_offline": bool(gate),
        "ab": asdict(ab.ab),
        "interleaving": asdict(ab.interleaving),
        "promoted": bool(promoted),
        "exploration": explore,
        "latency_ms": {
            "p50": round(float(np.percentile(live.latency_ms, 50)), 2),
            "p99": round(float(np.percentile(live.latency_ms, 99)), 2),
        },
        "sessions": sessions,
        "seconds": round(time.perf_counter() - started, 1),
    }
    report = write(out / "recs-report.html", result, live.latency_ms)
    step(f"report: {report}")
    return result


def stages(
    rec: Recommender, data: MovieLens, train: sp.csr_matrix, test: sp.csr_matrix
) -> dict[str, float]:
    """Quality by stage on the newer interactions: what retrieval finds (recall of the
    merged candidates), what ranking makes of it, what re-ranking does to diversity."""
    users = np.flatnonzero(np.diff(test.indptr))
    found = total = 0
    for u in users:
        c, _ = rec.candidates(user_of(data, int(u), train))
        held = test.indices[test.indptr[u] : test.indptr[u + 1]]
        found, total = found + int(np.isin(held, c.items).sum()), total + len(held)
    ranked = full_ranking(lambda us: rec.scores(us, train, data), train, test)
    div = coverage_and_diversity(rec, data, train, rerank=RerankConfig())
    return {
        "candidate_recall": round(found / total, 4),
        "candidates_per_user": float(rec.config.per_retriever * 2 + rec.config.popular),
        "ndcg_at_10": round(ranked["ndcg_at_10"], 4),
        "recall_at_20": round(ranked["recall_at_20"], 4),
        **div,
    }
