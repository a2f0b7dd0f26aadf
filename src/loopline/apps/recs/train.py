"""Training the recommender into the registry, and its items into the vector index.

:func:`train_and_register` fits the recommender (:func:`~loopline.apps.recs.model.fit`),
exports its LambdaRank ranker to ONNX in a registry bundle and packs beside it what
serving needs of that model version, so that one version is one consistent whole:

- ``retrieval.npz``: the retrievers' state (the query encoder, co-occurrence, popularity);
- ``items.npz``: item ids, genres, years and content embeddings;
- ``users.npz``: user ids, segments, age and gender, and each user's training items.

The items' vectors go to the ``items`` alias of a vector store, in a collection of that
version (``items__v3`` for version 3): warm items with their learned factors, items
without interactions with their content embedding mapped into the same space
(:class:`~loopline.apps.recs.content.ContentMap`). Each carries its first genre, for
filtered search. The first version is live at once; a later one goes through the swap
(:mod:`loopline.apps.recs.swap`: dual writes, backfill, the shadow gate, promote) and
becomes the registry's champion only if the gate passed.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from loopline.apps.recs.content import ContentMap, embed
from loopline.apps.recs.data import MovieLens
from loopline.apps.recs.evaluation import full_ranking
from loopline.apps.recs.model import Recommender, RecsConfig, fit, user_of
from loopline.apps.recs.ranking import INPUTS, Items, features
from loopline.apps.recs.retrieval import Retrieval
from loopline.registry import Pinned, Registry
from loopline.training import bundle
from loopline.vectors import Backfill, VectorStore

if TYPE_CHECKING:
    from loopline.apps.recs.swap import SwapConfig

MODEL = "recs"
ALIAS = "items"
ATTRS = ("genre",)
RETRIEVAL_FILE, ITEMS_FILE, USERS_FILE = "retrieval.npz", "items.npz", "users.npz"
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def items_of(data: MovieLens, *, cache: Path | None = None) -> Items:
    """What is known of every item without interactions (content embeddings cached)."""
    texts = [data.item_text(i) for i in range(data.n_items)]
    return Items(genres=data.genres, year=data.year, content=embed(texts, cache=cache))


def version_label(version: int) -> str:
    """The vector collection's version for registry version ``version``: ``v3``."""
    return f"v{version}"


def version_number(label: str) -> int:
    """The registry version of a vector collection's version label (``v3`` -> 3)."""
    if not label.startswith("v") or not label[1:].isdigit():
        raise ValueError(f"Vector index version {label!r} is not of the form 'v<number>'.")
    return int(label[1:])


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalogue:
    """One model version's items and users, as its bundle carries them."""

    item_ids: tuple[str, ...]
    items: Items
    user_ids: tuple[str, ...]
    segment: I64
    age: I64
    gender: I64
    history: sp.csr_matrix  # user x item, the training interactions
    default_segment: int  # a new user's segment when the request does not say

    def to_bytes(self) -> tuple[bytes, bytes]:
        """``items.npz`` and ``users.npz``."""
        items, users = io.BytesIO(), io.BytesIO()
        np.savez_compressed(
            items, item_ids=np.asarray(self.item_ids, dtype=np.str_), genres=self.items.genres,
            year=self.items.year, content=self.items.content,
        )  # fmt: skip
        np.savez_compressed(
            users, user_ids=np.asarray(self.user_ids, dtype=np.str_), segment=self.segment,
            age=self.age, gender=self.gender, indptr=self.history.indptr,
            indices=self.history.indices, default_segment=np.asarray(self.default_segment),
        )  # fmt: skip
        return items.getvalue(), users.getvalue()

    @classmethod
    def from_bytes(cls, items: bytes, users: bytes) -> Catalogue:
        i = np.load(io.BytesIO(items), allow_pickle=False)
        u = np.load(io.BytesIO(users), allow_pickle=False)
        indices, indptr = u["indices"], u["indptr"]
        shape = (len(indptr) - 1, len(i["item_ids"]))
        history = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape)
        return cls(
            item_ids=tuple(i["item_ids"].tolist()),
            items=Items(genres=i["genres"], year=i["year"].astype(np.int64), content=i["content"]),
            user_ids=tuple(u["user_ids"].tolist()),
            segment=u["segment"].astype(np.int64),
            age=u["age"].astype(np.int64),
            gender=u["gender"].astype(np.int64),
            history=history,
            default_segment=int(u["default_segment"]),
        )

    @classmethod
    def of(cls, data: MovieLens, train_matrix: sp.csr_matrix, items: Items) -> Catalogue:
        segment = data.segment
        return cls(
            item_ids=tuple(data.item_ids.tolist()), items=items,
            user_ids=tuple(data.user_ids.tolist()), segment=segment, age=data.age,
            gender=data.gender, history=sp.csr_matrix(train_matrix),
            default_segment=int(np.bincount(segment).argmax()),
        )  # fmt: skip


def content_map(
    retrieval: Retrieval, items: Items, vectors: F32 | None = None
) -> ContentMap | None:
    """Content embeddings to this version's item vectors, fitted on its warm items (None
    without any): the vector of an item that has no interactions yet."""
    warm = retrieval.popularity > 0
    if not warm.any():
        return None
    factors = retrieval.item_factors if vectors is None else vectors
    return ContentMap.fit(items.content[warm], np.asarray(factors[warm], dtype=np.float32))


def item_vectors(retrieval: Retrieval, items: Items) -> F32:
    """Every item's vector in the embedding space: learned factors where the item had
    interactions, its content mapped into that space where it had none."""
    vectors = np.array(retrieval.item_factors, dtype=np.float32, copy=True)
    cold = retrieval.popularity <= 0
    mapped = content_map(retrieval, items) if cold.any() else None
    if mapped is not None:
        vectors[cold] = mapped(items.content[cold])
    return vectors


def first_genre(items: Items) -> I64:
    """Each item's first genre (its filter attribute); 0 where it has none."""
    return np.asarray(np.argmax(items.genres > 0, axis=1), dtype=np.int64)


def train_and_register(
    registry: Registry,
    data: MovieLens,
    train_matrix: sp.csr_matrix,
    items: Items,
    *,
    seed: int = 0,
    config: RecsConfig | None = None,
    test: sp.csr_matrix | None = None,
    vectors: VectorStore | None = None,
    vectors_state: Path | None = None,
    promote: bool = True,
    swap: SwapConfig | None = None,
    progress: Callable[[Backfill], None] | None = None,
) -> int:
    """Fit, evaluate on ``test`` (full ranking: NDCG@10, recall@20), register as model
    ``recs``, index its items in ``vectors`` (a later version through the swap's shadow
    gate on ``test``, ``progress`` told of the backfill), and make it the champion
    (unless ``promote`` is False); return the registry version.

    Raises:
        SwapRefusedError: The new embeddings failed the gate: the version is registered,
            the index still serves the live version, and the champion did not move.
    """
    config = config or RecsConfig()
    recommender, booster = fit(data, train_matrix, items, config, seed=seed)
    metrics: dict[str, float] = {}
    if test is not None:
        got = full_ranking(lambda u: recommender.scores(u, train_matrix, data), train_matrix, test)
        metrics = {k: got[k] for k in ("ndcg_at_10", "recall_at_20")}
    x_check = _check_rows(recommender, data, train_matrix)
    catalogue = Catalogue.of(data, train_matrix, items)
    items_bytes, users_bytes = catalogue.to_bytes()
    packed, _ = bundle(
        booster,  # type: ignore[arg-type]
        x_check,
        meta={"application": MODEL, "factors": int(recommender.retrieval.item_factors.shape[1]),
              "items": data.n_items, "users": data.n_users},
        extra={RETRIEVAL_FILE: recommender.retrieval.to_bytes(), ITEMS_FILE: items_bytes,
               USERS_FILE: users_bytes},
    )  # fmt: skip
    version = registry.register(
        MODEL, bundle=packed, metrics=metrics,
        params={"factors": config.retrieval.factors, "iterations": config.retrieval.iterations,
                "per_retriever": config.per_retriever, "seed": seed},
        tags={"dataset": "movielens-100k"},
    ).version  # fmt: skip
    if vectors is not None:
        from loopline.apps.recs.swap import index_version  # the swap builds on this module

        index_version(
            vectors, registry, version, recommender.retrieval, catalogue, held_out=test,
            config=swap, state=vectors_state, progress=progress,
        )  # fmt: skip
    if promote:
        registry.promote(MODEL, version, "champion")
    return version


def _check_rows(recommender: Recommender, data: MovieLens, train_matrix: sp.csr_matrix) -> F64:
    """Ranker inputs of a few users' candidates, to check the ONNX export on."""
    rows = []
    for u in range(min(5, data.n_users)):
        who = user_of(data, u, train_matrix)
        c, _ = recommender.candidates(who)
        rows.append(features(c, who, recommender.retrieval, recommender.items))
    x = np.vstack(rows) if rows else np.zeros((1, len(INPUTS)))
    return np.asarray(x, dtype=np.float64)


def load_version(pinned: Pinned) -> tuple[Retrieval, Catalogue]:
    """A registered version's retrieval state and catalogue (every file checked)."""
    retrieval = Retrieval.from_bytes(pinned.read(RETRIEVAL_FILE))
    return retrieval, Catalogue.from_bytes(pinned.read(ITEMS_FILE), pinned.read(USERS_FILE))
