"""Full-ranking evaluation (RecBole's protocol): every item is ranked for every user
with a test interaction, the user's training items excluded; NDCG@k with binary
relevance and recall@k (hits over the user's test items)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from loopline.tasks import dcg

Scorer = Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float32]]  # users -> (n, items)


def top_k(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
    """The ``k`` best columns of each row, best first."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.asarray(np.take_along_axis(part, order, axis=1), dtype=np.int64)


def full_ranking(
    score: Scorer,
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    *,
    ks: Sequence[int] = (10, 20),
    batch: int = 256,
) -> dict[str, float]:
    """``ndcg_at_k`` and ``recall_at_k`` for each ``k``, averaged over test users."""
    users = np.flatnonzero(np.diff(test.indptr)).astype(np.int64)
    kmax = max(ks)
    hits = np.zeros((len(users), kmax))
    for start in range(0, len(users), batch):
        chunk = users[start : start + batch]
        s = np.array(score(chunk), dtype=np.float32, copy=True)
        s[train[chunk].nonzero()] = -np.inf
        top = top_k(s, kmax)
        hits[start : start + len(chunk)] = np.take_along_axis(test[chunk].toarray(), top, axis=1)
    relevant = np.diff(test.indptr)[users].astype(np.float64)
    out: dict[str, float] = {}
    for k in ks:
        ideal = dcg(np.arange(k)[None, :] < np.minimum(relevant, k)[:, None])
        out[f"ndcg_at_{k}"] = float(np.mean(dcg(hits[:, :k]) / ideal))
        out[f"recall_at_{k}"] = float(np.mean(hits[:, :k].sum(axis=1) / relevant))
    return out
