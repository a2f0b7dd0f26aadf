"""Vectors: nearest-neighbour search over item embeddings, and swapping the embedding model.

A :class:`VectorStore` holds named collections (:class:`VectorIndex`) and aliases.
:class:`EmbeddedVectors` keeps them in a folder (hnswlib HNSW graphs, the ``vectors``
extra); :class:`MilvusVectors` in a Milvus server (pymilvus, imported on first use).
:func:`open_vectors` picks one from a path or URL. :class:`VersionedIndex` keeps one
collection per embedding-model version behind an alias and swaps them with dual writes,
a resumable :class:`Backfill`, a :class:`ShadowReport` and an atomic promote.

    store = open_vectors("var/vectors")
    items = store.create("items__v1", dim=64, attrs=["genre"])
    items.upsert(ids, vectors, {"genre": genres})
    items.search(queries, 10, where={"genre": [1, 2]}).ids
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.vectors.base import CollectionNotFoundError, Matches, VectorIndex, VectorStore
from loopline.vectors.embedded import EmbeddedVectors
from loopline.vectors.swap import Answer, Backfill, ShadowReport, Snapshot, VersionedIndex

if TYPE_CHECKING:
    from loopline.vectors.milvus import MilvusVectors

__all__ = [
    "Answer",
    "Backfill",
    "CollectionNotFoundError",
    "EmbeddedVectors",
    "Matches",
    "MilvusVectors",
    "ShadowReport",
    "Snapshot",
    "VectorIndex",
    "VectorStore",
    "VersionedIndex",
    "open_vectors",
]


def open_vectors(where: str | os.PathLike[str]) -> VectorStore:
    """The store at ``where``: a folder (:class:`EmbeddedVectors`), or a Milvus server's
    ``milvus://host:port`` / ``http(s)://host:port`` (:class:`MilvusVectors`)."""
    text = os.fspath(where)
    if text.startswith(("milvus://", "http://", "https://")):
        from loopline.vectors.milvus import MilvusVectors

        return MilvusVectors(text)
    return EmbeddedVectors(Path(text))


def __getattr__(name: str) -> Any:  # a backend needing pymilvus, imported on first use
    if name == "MilvusVectors":
        from loopline.vectors.milvus import MilvusVectors

        return MilvusVectors
    raise AttributeError(f"module 'loopline.vectors' has no attribute {name!r}")
