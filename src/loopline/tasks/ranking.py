"""Ranking tasks: a ranked list of items per request, graded relevance per item (a
click, a rating, a purchase), as in recommendation and search.

Outputs carry the ranked item ids under ``items``; a request's labels map item ids to
relevance (0 = not relevant). Requests without any relevant label are left out of the
metrics, as RecBole and Microsoft Recommenders do for users without a test positive.
Gains are exponential (``2**rel - 1``, LightGBM's LambdaRank default), so binary
relevance gives the usual binary NDCG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopline.tasks.base import Arrays, LabelValues, Outputs, usable

F64 = npt.NDArray[np.float64]


def dcg(relevance: npt.ArrayLike) -> F64:
    """Discounted cumulative gain of each row of ``relevance`` (rows: requests, columns:
    ranks), gains ``2**rel - 1`` discounted by ``log2(rank + 1)``."""
    rel = np.atleast_2d(np.asarray(relevance, dtype=np.float64))
    discounts = 1.0 / np.log2(np.arange(2, rel.shape[1] + 2))
    return np.asarray(((2.0**rel - 1.0) * discounts).sum(axis=1), dtype=np.float64)


def ndcg_at_k(ranked: Sequence[str], relevance: LabelValues, k: int) -> float:
    """NDCG@k of one ranked list against its items' relevance (NaN: nothing relevant)."""
    gains, ideal, _, _ = _row(ranked, relevance, k)
    return float("nan") if ideal <= 0 else float(dcg(gains)[0] / ideal)


def _row(ranked: Sequence[str], relevance: LabelValues, k: int) -> tuple[F64, float, int, int]:
    """One request: the relevance at each of the top ``k`` ranks, the ideal DCG@k, how
    many items are relevant, and how many of them are in the top ``k``."""
    top = list(ranked[:k])
    gains = np.zeros(k)
    gains[: len(top)] = [relevance.get(item, 0.0) for item in top]
    relevant = [v for v in relevance.values() if v > 0]
    best = np.zeros(k)
    ordered = sorted(relevant, reverse=True)[:k]
    best[: len(ordered)] = ordered
    hits = sum(1 for item in top if relevance.get(item, 0.0) > 0)
    return gains, float(dcg(best)[0]), len(relevant), hits


def _arrays(
    outputs: Sequence[Outputs], labels: Sequence[LabelValues], items: str, k: int
) -> Arrays:
    """Per request: usable (something relevant is known), the relevance at each of the
    top ``k`` ranks, the ideal DCG@k, the relevant count, and the hits in the top ``k``."""
    n = len(outputs)
    ok, ideal = np.zeros(n, dtype=bool), np.zeros(n)
    gains, relevant, hits = np.zeros((n, k)), np.zeros(n), np.zeros(n)
    for i, (out, lab) in enumerate(zip(outputs, labels, strict=True)):
        if any(v > 0 for v in lab.values()):
            gains[i], ideal[i], relevant[i], hits[i] = _row(list(out.get(items) or ()), lab, k)
            ok[i] = True
    return ok, gains, ideal, relevant, hits


@dataclass(frozen=True)
class NDCG:
    """Mean NDCG@k over the requests with a relevant item."""

    k: int = 10
    items: str = "items"

    @property
    def name(self) -> str:
        return f"ndcg_at_{self.k}"

    def arrays(self, outputs: Sequence[Outputs], labels: Sequence[LabelValues]) -> Arrays:
        return _arrays(outputs, labels, self.items, self.k)

    def value(self, arrays: Arrays) -> float:
        gains, ideal, _, _ = usable(arrays)
        return float(np.mean(dcg(gains) / ideal)) if len(ideal) else float("nan")

    def support(self, arrays: Arrays) -> int:
        return int(arrays[0].sum())


@dataclass(frozen=True)
class RecallAtK:
    """Mean share of a request's relevant items found in its top ``k``."""

    k: int = 10
    items: str = "items"

    @property
    def name(self) -> str:
        return f"recall_at_{self.k}"

    def arrays(self, outputs: Sequence[Outputs], labels: Sequence[LabelValues]) -> Arrays:
        return _arrays(outputs, labels, self.items, self.k)

    def value(self, arrays: Arrays) -> float:
        _, _, relevant, hits = usable(arrays)
        return float(np.mean(hits / relevant)) if len(relevant) else float("nan")

    def support(self, arrays: Arrays) -> int:
        return int(arrays[0].sum())


@dataclass(frozen=True)
class Ranking:
    """A ranking task judged at cut-off ``k`` (headline: NDCG@k)."""

    k: int = 10
    items: str = "items"
    name: str = "ranking"
    objective: str = "lambdarank"

    @property
    def metric(self) -> NDCG:
        return NDCG(self.k, self.items)

    def report(self, outputs: Sequence[Outputs], labels: Sequence[LabelValues]) -> dict[str, float]:
        arrays = _arrays(outputs, labels, self.items, self.k)
        ndcg, recall = NDCG(self.k, self.items), RecallAtK(self.k, self.items)
        return {
            "requests_with_relevant": float(arrays[0].sum()),
            ndcg.name: ndcg.value(arrays),
            recall.name: recall.value(arrays),
        }
