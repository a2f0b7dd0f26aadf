"""Candidate generation: three retrievers, merged.

- **Embedding retrieval**: implicit-feedback matrix factorisation (ALS, Hu, Koren and
  Volinsky 2008, through the ``implicit`` library); item vectors live in a vector index,
  a user's query vector is their learned factor, or, for a user the model has not seen
  or who clicked since, a fold-in of their items (a ridge solve on the item factors),
  so the query encoder is always the one of the index's model version.
- **Item-to-item co-occurrence**: a learned co-occurrence model (EASE, Steck 2019),
  pruned to each item's strongest ``neighbours`` so it is sparse and scales with the
  catalogue; a user's scores are the sums over their items.
- **Popularity by segment** (age band x gender): what new users get first.

Each retriever returns its top ``n`` items for a user; the merged candidates carry
each retriever's score and rank (``rank = n`` where a retriever did not return it).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
SOURCES = ("embedding", "cooccurrence", "popularity")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievalConfig:
    factors: int = 64
    iterations: int = 15
    regularization: float = 0.05
    alpha: float = 2.0
    l2: float = 250.0  # EASE's
    neighbours: int = 500
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Candidates:
    """A user's merged candidates: items, and per retriever its score and rank."""

    items: I64
    scores: F32  # (n, 3) in SOURCES order; 0 where a retriever did not return the item
    ranks: F32  # (n, 3); the retriever's n where it did not


@dataclass(frozen=True, slots=True, kw_only=True)
class Retrieval:
    """The retrievers' learned state (one model version)."""

    user_factors: F32
    item_factors: F32
    neighbours: sp.csr_matrix  # item x item weights, each row its strongest neighbours
    segment_popularity: F32  # (segments, items), rows sum to 1
    popularity: F32  # interactions per item in training
    fold_in_l2: float = 1.0

    @classmethod
    def fit(
        cls, train: sp.csr_matrix, segment: I64, n_segments: int, config: RetrievalConfig
    ) -> Retrieval:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        with threadpool_limits(1, "blas"):  # implicit runs its own threads (and warns)
            als = AlternatingLeastSquares(
                factors=config.factors,
                regularization=config.regularization,
                alpha=config.alpha,
                iterations=config.iterations,
                random_state=config.seed,
                calculate_training_loss=False,
            )
            als.fit(train.astype(np.float32), show_progress=False)
        rows, items = train.nonzero()
        seg = np.zeros((n_segments, train.shape[1]), dtype=np.float64)
        np.add.at(seg, (segment[rows], items), 1.0)
        seg = (seg + 1e-3) / (seg + 1e-3).sum(axis=1, keepdims=True)
        return cls(
            user_factors=np.asarray(als.user_factors, dtype=np.float32),
            item_factors=np.asarray(als.item_factors, dtype=np.float32),
            neighbours=cooccurrence(train, l2=config.l2, keep=config.neighbours),
            segment_popularity=seg.astype(np.float32),
            popularity=np.asarray(train.sum(axis=0), dtype=np.float32).ravel(),
        )

    @property
    def n_items(self) -> int:
        return int(self.item_factors.shape[0])

    def query(self, user: int | None, history: I64, fresh: I64 | None = None) -> F32:
        """The embedding query vector: the user's factor when the model knows them and
        nothing new happened since; otherwise a fold-in of ``history`` (all their items)."""
        if (
            user is not None
            and 0 <= user < len(self.user_factors)
            and (fresh is None or not len(fresh))
        ):
            return np.asarray(self.user_factors[user], dtype=np.float32)
        if not len(history):
            return np.zeros(self.item_factors.shape[1], dtype=np.float32)
        return fold_in(self.item_factors, np.asarray(history, dtype=np.int64), self.fold_in_l2)

    def cooccurrence_scores(self, history: I64) -> F32:
        if not len(history):
            return np.zeros(self.n_items, dtype=np.float32)
        rows = self.neighbours[np.unique(np.asarray(history, dtype=np.int64))]
        return np.asarray(rows.sum(axis=0), dtype=np.float32).ravel()

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        n = self.neighbours
        np.savez_compressed(
            buf,
            user_factors=self.user_factors,
            item_factors=self.item_factors,
            data=n.data,
            indices=n.indices,
            indptr=n.indptr,
            segment_popularity=self.segment_popularity,
            popularity=self.popularity,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Retrieval:
        z = np.load(io.BytesIO(data), allow_pickle=False)
        n = len(z["item_factors"])
        return cls(
            user_factors=z["user_factors"],
            item_factors=z["item_factors"],
            neighbours=sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(n, n)),
            segment_popularity=z["segment_popularity"],
            popularity=z["popularity"],
        )


def cooccurrence(train: sp.csr_matrix, *, l2: float, keep: int) -> sp.csr_matrix:
    """EASE's item x item weights, each row pruned to its ``keep`` largest in magnitude."""
    gram = np.asarray((train.T @ train).toarray(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += l2
    p = np.linalg.inv(gram)
    b = (p / -np.diag(p)).astype(np.float32)
    np.fill_diagonal(b, 0.0)
    if keep < b.shape[1]:  # by magnitude: EASE's negative weights matter as much
        cut = np.argpartition(-np.abs(b), keep, axis=1)[:, keep:]
        np.put_along_axis(b, cut, 0.0, axis=1)
    out = sp.csr_matrix(b)
    out.eliminate_zeros()
    return out


def fold_in(item_factors: F32, items: I64, l2: float) -> F32:
    """The user vector that best explains liking ``items``: a ridge solve."""
    v = item_factors[items]
    gram = v.T @ v + l2 * np.eye(v.shape[1], dtype=np.float32)
    return np.asarray(np.linalg.solve(gram, v.sum(axis=0)), dtype=np.float32)


def best(scores: F32, n: int, exclude: I64) -> I64:
    """The ``n`` highest-scoring items, best first, ``exclude`` left out."""
    s = np.array(scores, dtype=np.float32, copy=True)
    s[exclude] = -np.inf
    n = min(n, int(np.isfinite(s).sum()))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-s, n - 1)[:n]
    return np.asarray(top[np.argsort(-s[top], kind="stable")], dtype=np.int64)


def merge(lists: Sequence[tuple[I64, F32]], n: int) -> Candidates:
    """Union of the retrievers' lists (``(items, scores)`` in SOURCES order, best first)."""
    items = np.unique(np.concatenate([i for i, _ in lists])) if lists else np.zeros(0, np.int64)
    scores = np.zeros((len(items), len(SOURCES)), dtype=np.float32)
    ranks = np.full((len(items), len(SOURCES)), float(n), dtype=np.float32)
    for col, (found, values) in enumerate(lists):
        at = np.searchsorted(items, found)
        scores[at, col] = values
        ranks[at, col] = np.arange(len(found), dtype=np.float32)
    return Candidates(items=items.astype(np.int64), scores=scores, ranks=ranks)
