"""Offline splits of the interactions, per user, as RecBole's protocols cut them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Split:
    """Train and test interactions as user x item 0/1 matrices (CSR, float32)."""

    train: sp.csr_matrix
    test: sp.csr_matrix


def matrix(user: I64, item: I64, shape: tuple[int, int]) -> sp.csr_matrix:
    """A 0/1 user x item matrix (a repeated pair counts once)."""
    m = sp.csr_matrix((np.ones(len(user), dtype=np.float32), (user, item)), shape=shape)
    m.data[:] = 1.0
    return m


def random_split(
    user: I64, item: I64, shape: tuple[int, int], *, test_share: float = 0.2, seed: int = 0
) -> Split:
    """Each user's interactions shuffled and cut ``1 - test_share`` / ``test_share``
    (RecBole's random ordering split, ``RO``)."""
    rng = np.random.default_rng(seed)
    return _cut(user, item, shape, rng.random(len(user)), test_share)


def temporal_split(
    user: I64, item: I64, time: I64, shape: tuple[int, int], *, test_share: float = 0.2
) -> Split:
    """Each user's last ``test_share`` of interactions in time are the test (``TO``)."""
    return _cut(user, item, shape, time.astype(np.float64), test_share)


def _cut(
    user: I64, item: I64, shape: tuple[int, int], key: npt.NDArray[np.float64], share: float
) -> Split:
    order = np.lexsort((key, user))
    u = user[order]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    counts = np.diff(np.r_[starts, len(u)])
    rank = np.arange(len(u)) - np.repeat(starts, counts)
    keep = np.repeat(np.ceil(counts * (1.0 - share)).astype(np.int64), counts)
    train = rank < keep
    return Split(
        train=matrix(u[train], item[order][train], shape),
        test=matrix(u[~train], item[order][~train], shape),
    )
