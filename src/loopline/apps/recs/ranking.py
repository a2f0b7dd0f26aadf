"""The ranking stage: features of (user, candidate) pairs and a LambdaRank model.

Features come from four places: the retrievers (each one's score and rank), the item
(popularity, year, genres, content embedding), the user (history length, age, gender,
segment, genre profile) and the session (similarity of the item to what the user
clicked in this session). The same function builds them for training and serving, from
the same inputs, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopline.apps.recs.retrieval import Candidates, Retrieval

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

INPUTS = (
    "embedding_score",
    "embedding_rank",
    "cooccurrence_score",
    "cooccurrence_rank",
    "popularity_score",
    "popularity_rank",
    "item_popularity",
    "segment_share",
    "history_length",
    "genre_affinity",
    "content_similarity",
    "session_similarity",
    "item_year",
    "user_age",
    "user_gender",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Items:
    """What is known of every item without interactions."""

    genres: F32  # (items, genres) 0/1
    year: I64
    content: F32  # (items, 384) unit-length


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """One request's user: history (all their items), session (this session's clicks,
    newest first), side information."""

    index: int | None
    history: I64
    session: I64
    age: int
    gender: int
    segment: int
    genre_counts: F32 | None = None  # windowed per-genre counts from the feature engine


def features(c: Candidates, user: User, r: Retrieval, items: Items) -> F64:
    """The ranker's input rows for ``user``'s candidates, columns in :data:`INPUTS`."""
    n = len(c.items)
    genre = user.genre_counts
    if genre is None:
        genre = items.genres[user.history].sum(axis=0) if len(user.history) else None
    profile = _unit(genre) if genre is not None else np.zeros(items.genres.shape[1], np.float32)
    taste = _unit(items.content[user.history].mean(axis=0)) if len(user.history) else None
    now = _unit(items.content[user.session].mean(axis=0)) if len(user.session) else None
    cand_content = items.content[c.items]
    out = np.empty((n, len(INPUTS)), dtype=np.float64)
    out[:, 0:6:2] = c.scores
    out[:, 1:6:2] = np.log1p(c.ranks)
    out[:, 6] = np.log1p(r.popularity[c.items])
    out[:, 7] = r.segment_popularity[user.segment, c.items] * r.n_items
    out[:, 8] = np.log1p(len(user.history))
    out[:, 9] = items.genres[c.items] @ profile
    out[:, 10] = cand_content @ taste if taste is not None else 0.0
    out[:, 11] = cand_content @ now if now is not None else np.nan
    out[:, 12] = items.year[c.items]
    out[:, 13] = user.age
    out[:, 14] = user.gender
    return out


def _unit(v: F32) -> F32:
    norm = float(np.linalg.norm(v))
    return np.asarray(v / norm if norm > 0 else v, dtype=np.float32)


def groups(sizes: Sequence[int]) -> I64:
    return np.asarray(sizes, dtype=np.int64)
