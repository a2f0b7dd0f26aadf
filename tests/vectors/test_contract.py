"""The contract every vector store keeps, checked on each backend."""

from __future__ import annotations

import numpy as np
import pytest

from loopline.exceptions import ConfigError
from loopline.vectors import (
    CollectionNotFoundError,
    EmbeddedVectors,
    VectorIndex,
    VectorStore,
    open_vectors,
)
from tests.vectors.conftest import BACKENDS, clustered

pytestmark = pytest.mark.parametrize("store", BACKENDS, indirect=True)


def exact(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]
    return ids[order]


def filled(store: VectorStore, n: int = 300, dim: int = 8) -> tuple[VectorIndex, np.ndarray]:
    index = store.create("things", dim=dim, attrs=["genre", "year"])
    vectors = clustered(n, dim, seed=1)
    ids = np.arange(n, dtype=np.int64) * 3 + 7  # not row numbers
    index.upsert(ids, vectors, {"genre": ids % 10, "year": ids % 3})
    return index, vectors


def reopen(store: VectorStore) -> VectorStore:
    store.close()
    if isinstance(store, EmbeddedVectors):
        return EmbeddedVectors(store.path)
    return open_vectors(store.uri)  # type: ignore[attr-defined]


def test_upsert_search_delete_count_ids(store: VectorStore) -> None:
    index, vectors = filled(store)
    ids = np.arange(300) * 3 + 7
    assert index.count() == 300
    assert index.ids().tolist() == ids.tolist()
    found = index.search(vectors[:5], 3)
    assert found.ids.shape == (5, 3)
    assert found.ids.dtype == np.int64
    assert found.scores.dtype == np.float32
    assert found.ids[:, 0].tolist() == ids[:5].tolist()  # each vector finds itself first
    assert np.all(np.diff(found.scores, axis=1) <= 1e-6)  # best first
    index.delete(np.array([7, 10, 999_999]))  # an absent id is ignored
    assert index.count() == 298
    assert 7 not in index.search(vectors[:1], 5).ids
    assert index.ids().tolist() == ids[2:].tolist()


def test_upsert_replaces_a_row(store: VectorStore) -> None:
    index, vectors = filled(store)
    index.upsert(np.array([7]), vectors[100:101], {"genre": np.array([42]), "year": np.array([0])})
    assert index.count() == 300
    found = index.search(vectors[100:101], 2)
    assert set(found.ids[0].tolist()) == {7, 307}
    assert index.search(vectors[:1], 1, where={"genre": 42}).ids.tolist() == [[7]]
    present, attrs = index.attributes(np.array([7, 8, 10]))
    assert present.tolist() == [7, 10]
    assert attrs["genre"].tolist() == [42, 0]


@pytest.mark.parametrize(
    ("where", "allowed"),
    [
        ({"genre": 3}, lambda ids: ids % 10 == 3),  # few rows
        (
            {"genre": [1, 2, 3, 4, 5, 6, 7, 8]},
            lambda ids: (ids % 10 >= 1) & (ids % 10 <= 8),
        ),  # most
        ({"genre": [0, 5], "year": 1}, lambda ids: (ids % 10 % 5 == 0) & (ids % 3 == 1)),
    ],
)
def test_a_filtered_search_returns_only_and_exactly_the_matching_rows(
    store: VectorStore, where: dict[str, object], allowed: object
) -> None:
    index, vectors = filled(store, n=3000, dim=16)
    ids = np.arange(3000) * 3 + 7
    keep = allowed(ids)  # type: ignore[operator]
    found = index.search(vectors[:20], 10, where=where)  # type: ignore[arg-type]
    assert set(found.ids.ravel().tolist()) <= set(ids[keep].tolist())
    assert (found.ids >= 0).all()  # ≥ k matching rows: k answers for every query
    truth = exact(vectors[keep], ids[keep], vectors[:20], 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.ids, truth, strict=True)])
    assert recall >= 0.9


def test_a_filter_matching_fewer_than_k_rows_pads_with_minus_one(store: VectorStore) -> None:
    index, vectors = filled(store)
    found = index.search(vectors[:2], 50, where={"genre": 4, "year": 2})
    expected = {i for i in (np.arange(300) * 3 + 7).tolist() if i % 10 == 4 and i % 3 == 2}
    for row in found.ids:
        assert set(row[row >= 0].tolist()) == expected
        assert (row[len(expected) :] == -1).all()


def test_k_larger_than_the_collection_and_an_empty_collection(store: VectorStore) -> None:
    index, vectors = filled(store, n=5)
    found = index.search(vectors[:1], 8)
    assert sorted(found.ids[0, :5].tolist()) == [7, 10, 13, 16, 19]
    assert found.ids[0, 5:].tolist() == [-1, -1, -1]
    empty = store.create("empty", dim=8)
    assert empty.count() == 0
    assert empty.ids().tolist() == []
    assert empty.search(vectors[:2], 3).ids.tolist() == [[-1] * 3] * 2


def test_collections_persist_across_reopen(store: VectorStore) -> None:
    index, vectors = filled(store)
    index.delete(np.array([10]))
    store.point("current", "things")
    store = reopen(store)
    again = store.open("current")
    assert again.name == "things"
    assert again.dim == 8
    assert again.attrs == ("genre", "year")
    assert again.count() == 299
    top = again.search(vectors[:3], 1).ids[:, 0].tolist()
    assert top[0] == 7
    assert top[1] != 10
    assert top[2] == 13
    assert again.search(vectors[2:3], 1, where={"genre": 3}).ids.tolist() == [[13]]
    store.close()


def test_aliases_point_resolve_and_move(store: VectorStore) -> None:
    a = store.create("items__v1", dim=4)
    b = store.create("items__v2", dim=6)
    assert store.resolve("items") is None
    store.point("items", "items__v1")
    assert store.resolve("items") == "items__v1"
    assert store.open("items").name == "items__v1"
    store.point("items", "items__v2")
    assert store.resolve("items") == "items__v2"
    assert store.open("items").dim == 6
    with pytest.raises(ConfigError, match="alias"):
        store.drop("items__v2")  # the live collection stays
    store.drop("items__v1")
    assert "items__v1" not in store.collections()
    with pytest.raises(CollectionNotFoundError):
        store.open("items__v1")
    with pytest.raises(CollectionNotFoundError):
        store.point("items", "nothing")
    assert a.name != b.name


def test_a_dimension_mismatch_and_bad_filters_raise_clear_errors(store: VectorStore) -> None:
    index, vectors = filled(store, n=10)
    with pytest.raises(ConfigError, match=r"8-dimensional.*got \(1, 5\)"):
        index.search(np.zeros((1, 5), np.float32), 3)
    with pytest.raises(ConfigError, match="8-dimensional"):
        index.upsert(np.array([1]), np.zeros((1, 9), np.float32), {"genre": [0], "year": [0]})
    with pytest.raises(ConfigError, match="cannot filter on 'title'"):
        index.search(vectors[:1], 3, where={"title": 1})
    with pytest.raises(ConfigError, match="takes an int or a list of ints"):
        index.search(vectors[:1], 3, where={"genre": ["1 or id > 0"]})  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="needs each of them"):
        index.upsert(np.array([1]), vectors[:1])
    with pytest.raises(ConfigError, match="identifier"):
        store.create("bad name; drop", dim=3)


def test_ann_recall_at_10_against_exact_search(store: VectorStore) -> None:
    vectors = clustered(5000, 32, seed=2)
    queries = clustered(200, 32, seed=3)
    ids = np.arange(5000, dtype=np.int64)
    index = store.create("recall", dim=32, metric="cosine")
    index.upsert(ids, vectors)
    found = index.search(queries, 10)
    truth = exact(vectors, ids, queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.ids, truth, strict=True)])
    assert recall >= 0.95
