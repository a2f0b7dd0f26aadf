"""The offline baselines the pipeline is measured against, as RecBole defines them:
MostPop, ItemKNN (cosine, 100 neighbours) and EASE (Steck, "Embarrassingly Shallow
Autoencoders for Sparse Data", WWW 2019; L2 weight 250)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


class MostPop:
    """Every user gets the most interacted-with items."""

    def fit(self, train: sp.csr_matrix) -> MostPop:
        self.counts_ = np.asarray(train.sum(axis=0), dtype=np.float32).ravel()
        self.train_ = train
        return self

    def scores(self, users: I64) -> F32:
        return np.broadcast_to(self.counts_, (len(users), len(self.counts_)))


class ItemItem:
    """Scores a user's items through an item x item weight matrix ``weights_``."""

    weights_: F32
    train_: sp.csr_matrix

    def scores(self, users: I64) -> F32:
        return np.asarray(self.train_[users] @ self.weights_, dtype=np.float32)


class ItemKNN(ItemItem):
    """Cosine similarity between items' user columns, each item keeping its ``k`` most
    similar neighbours."""

    def __init__(self, *, k: int = 100, shrink: float = 0.0) -> None:
        self.k = k
        self.shrink = shrink

    def fit(self, train: sp.csr_matrix) -> ItemKNN:
        x = train.astype(np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        sim = np.asarray((x.T @ x).toarray(), dtype=np.float32)
        sim /= np.outer(norms, norms) + self.shrink + 1e-9
        np.fill_diagonal(sim, 0.0)
        if self.k < sim.shape[0]:
            cut = np.argpartition(-sim, self.k, axis=0)[self.k :]
            np.put_along_axis(sim, cut, 0.0, axis=0)
        self.weights_, self.train_ = sim, train
        return self


class EASE(ItemItem):
    """A closed-form item x item linear model with a zero diagonal."""

    def __init__(self, *, l2: float = 250.0) -> None:
        self.l2 = l2

    def fit(self, train: sp.csr_matrix) -> EASE:
        gram = np.asarray((train.T @ train).toarray(), dtype=np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)
        b = p / -np.diag(p)
        np.fill_diagonal(b, 0.0)
        self.weights_, self.train_ = b.astype(np.float32), train
        return self
