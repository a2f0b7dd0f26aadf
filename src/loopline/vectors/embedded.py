"""The embedded vector store: one folder, one hnswlib HNSW graph per collection.

Layout of the folder::

    aliases.json                 {"items": "items__v2", ...}, replaced atomically
    <collection>/meta.json       dim, metric, attributes, the generation on disk
    <collection>/g<N>.hnsw       the graph (hnswlib's own format)
    <collection>/g<N>.npz        ids, vectors, attributes

A collection lives in memory: its HNSW graph (hnswlib, chosen by measurement: see
docs/decisions/0009-vector-index.md) and dense NumPy copies of its ids, vectors and
attributes, which the exact searches use. ``flush`` (and ``close``) writes a new
generation's files and then switches ``meta.json`` to it with ``os.replace``: a crash
leaves the old generation or the new one, never a mixture. ``aliases.json`` is
replaced the same way, so another process reading it sees the old target or the new.

Search: a collection of at most :data:`EXACT_ROWS` rows is searched exactly (faster than
the graph at that size). A filter selects rows by attribute; when it selects at most
:data:`EXACT_ROWS` rows or under :data:`EXACT_FRACTION` of them, those rows are searched
exactly; otherwise the graph is searched for enough candidates that ``k`` should match
(``2 k / fraction``), the non-matching ones are dropped, and any query left with fewer
than ``k`` is searched exactly over the matching rows. Either way no non-matching row is
ever returned and a filter matching ``m >= k`` rows returns ``k`` of them.

One process writes a folder; each collection has a lock, so a serving process may search
from many threads while another thread upserts.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from loopline.exceptions import ConfigError
from loopline.vectors.base import (
    F32,
    I64,
    CollectionNotFoundError,
    Matches,
    Where,
    check_attrs,
    check_ids,
    check_k,
    check_name,
    check_schema,
    check_vectors,
    check_where,
    empty_matches,
    exact_top_k,
)

EXACT_ROWS = 2048
"""Collections (or filtered subsets) this small are searched exactly."""
EXACT_FRACTION = 0.1
"""A filter selecting under this share of the rows is searched exactly over them."""
M, EF_CONSTRUCTION, EF_SEARCH = 16, 128, 64


def _write_json(path: Path, value: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(value, sort_keys=True))
    os.replace(tmp, path)


class EmbeddedIndex:
    """One collection of an :class:`EmbeddedVectors` folder (made by its ``create``/``open``)."""

    def __init__(
        self, folder: Path, *, name: str, dim: int, metric: str, attrs: Sequence[str]
    ) -> None:
        self.folder = folder
        self.name = name
        self.dim = dim
        self.metric = metric
        self.attrs = tuple(attrs)
        self._lock = threading.RLock()
        self._size = 0
        self._ids: I64 = np.zeros(0, np.int64)
        self._vectors: F32 = np.zeros((0, dim), np.float32)
        self._columns: dict[str, I64] = {a: np.zeros(0, np.int64) for a in self.attrs}
        self._row: dict[int, int] = {}
        self._graph: Any = None  # hnswlib.Index, built on the first upsert
        self._dirty = False

    # -- writes ----------------------------------------------------------------------
    def upsert(self, ids: I64, vectors: F32, attrs: Mapping[str, I64] | None = None) -> None:
        ids = check_ids(self, ids)
        vectors = check_vectors(self, vectors, len(ids))
        columns = check_attrs(self, attrs, len(ids))
        if len(np.unique(ids)) != len(ids):
            raise ConfigError(
                f"The ids of one upsert to collection {self.name!r} must be distinct."
            )
        with self._lock:
            rows = np.array([self._row.get(int(i), -1) for i in ids], np.int64)
            new = rows < 0
            self._reserve(self._size + int(new.sum()))
            rows[new] = np.arange(self._size, self._size + int(new.sum()))
            for i, row in zip(ids[new].tolist(), rows[new].tolist(), strict=True):
                self._row[i] = row
            self._size += int(new.sum())
            self._ids[rows] = ids
            self._vectors[rows] = vectors
            for name, values in columns.items():
                self._columns[name][rows] = values
            graph = self._ensure_graph(len(ids))
            graph.add_items(vectors, ids)  # an existing label is updated (and undeleted)
            self._dirty = True

    def delete(self, ids: I64) -> None:
        ids = check_ids(self, ids)
        with self._lock:
            for i in ids.tolist():
                row = self._row.pop(i, None)
                if row is None:
                    continue
                self._graph.mark_deleted(i)
                last = self._size - 1
                if row != last:  # the last row fills the hole
                    self._ids[row] = self._ids[last]
                    self._vectors[row] = self._vectors[last]
                    for column in self._columns.values():
                        column[row] = column[last]
                    self._row[int(self._ids[row])] = row
                self._size = last
            self._dirty = True

    def _reserve(self, rows: int) -> None:
        if rows <= len(self._ids):
            return
        capacity = max(rows, 2 * len(self._ids), 1024)
        self._ids = np.resize(self._ids, capacity)
        self._vectors = np.resize(self._vectors, (capacity, self.dim))
        self._columns = {n: np.resize(c, capacity) for n, c in self._columns.items()}

    def _ensure_graph(self, adding: int) -> Any:
        """The graph, with room for ``adding`` more labels (a deleted label keeps its slot)."""
        import hnswlib

        if self._graph is None:
            self._graph = hnswlib.Index(space="ip", dim=self.dim)
            self._graph.init_index(
                max_elements=max(adding, 1024), M=M, ef_construction=EF_CONSTRUCTION
            )
            self._graph.set_ef(EF_SEARCH)
        needed = self._graph.get_current_count() + adding
        if needed > self._graph.get_max_elements():
            self._graph.resize_index(max(needed, 2 * self._graph.get_max_elements()))
        return self._graph

    # -- reads -----------------------------------------------------------------------
    def search(self, queries: F32, k: int, *, where: Where | None = None) -> Matches:
        queries = check_vectors(self, queries)
        k = check_k(self, k)
        allowed = check_where(self, where)
        with self._lock:
            size = self._size
            if size == 0:
                return empty_matches(len(queries), k)
            if not allowed:
                return self._search_all(queries, k)
            mask = np.ones(size, bool)
            for name, values in allowed.items():
                mask &= np.isin(self._columns[name][:size], values)
            selected = int(mask.sum())
            if selected == 0:
                return empty_matches(len(queries), k)
            if selected <= EXACT_ROWS or selected < EXACT_FRACTION * size:
                rows = np.flatnonzero(mask)
                return exact_top_k(self._vectors[rows], self._ids[rows], queries, k)
            fetch = min(size, int(np.ceil(2 * k * size / selected)) + 10)
            return self._keep(self._graph_search(queries, fetch), queries, k, mask)

    def _search_all(self, queries: F32, k: int) -> Matches:
        size = self._size
        found = None if size <= EXACT_ROWS else self._graph_search(queries, min(k, size))
        if found is None:
            return exact_top_k(self._vectors[:size], self._ids[:size], queries, k)
        if k <= size:
            return found
        out = empty_matches(len(queries), k)
        out.ids[:, :size], out.scores[:, :size] = found.ids, found.scores
        return out

    def _graph_search(self, queries: F32, fetch: int) -> Matches | None:
        self._graph.set_ef(max(EF_SEARCH, fetch))
        try:
            labels, distances = self._graph.knn_query(queries, fetch)
        except RuntimeError:  # fewer live points reachable than asked: search exactly
            return None
        finally:
            self._graph.set_ef(EF_SEARCH)
        return Matches(labels.astype(np.int64), (1.0 - distances).astype(np.float32))

    def _keep(self, found: Matches | None, queries: F32, k: int, mask: Any) -> Matches:
        """The ``k`` best of the graph's candidates that match; queries left short (or a
        graph that could not answer) are searched exactly over the matching rows."""
        rows = np.flatnonzero(mask)
        want = min(k, len(rows))
        if found is None:
            return exact_top_k(self._vectors[rows], self._ids[rows], queries, k)
        out = empty_matches(len(queries), k)
        ok = np.isin(found.ids, self._ids[rows])
        short = []
        for q in range(len(queries)):
            keep = np.flatnonzero(ok[q])[:k]
            if len(keep) < want:
                short.append(q)
                continue
            out.ids[q, : len(keep)] = found.ids[q, keep]
            out.scores[q, : len(keep)] = found.scores[q, keep]
        if short:
            exact = exact_top_k(self._vectors[rows], self._ids[rows], queries[short], k)
            out.ids[short], out.scores[short] = exact.ids, exact.scores
        return out

    def count(self) -> int:
        with self._lock:
            return self._size

    def ids(self) -> I64:
        with self._lock:
            return np.sort(self._ids[: self._size])

    def attributes(self, ids: I64) -> tuple[I64, dict[str, I64]]:
        ids = check_ids(self, ids)
        with self._lock:
            rows = np.array([self._row.get(i, -1) for i in ids.tolist()], np.int64)
            hit = rows >= 0
            return ids[hit], {n: c[rows[hit]].copy() for n, c in self._columns.items()}

    # -- persistence -----------------------------------------------------------------
    def flush(self) -> None:
        """Write what changed since the last flush (a new generation, then switch to it)."""
        with self._lock:
            if not self._dirty:
                return
            meta = json.loads((self.folder / "meta.json").read_text())
            generation = int(meta["generation"]) + 1
            size = self._size
            if self._graph is not None and self._graph.get_current_count() > 1.25 * size + 1024:
                self._rebuild()  # many deleted labels: compact the graph
            arrays: dict[str, Any] = {f"attr_{n}": c[:size] for n, c in self._columns.items()}
            arrays.update(ids=self._ids[:size], vectors=self._vectors[:size])
            np.savez(self.folder / f"g{generation}.npz", **arrays)
            if self._graph is not None:
                self._graph.save_index(str(self.folder / f"g{generation}.hnsw"))
            _write_json(self.folder / "meta.json", {**meta, "generation": generation})
            for old in (f"g{generation - 1}.npz", f"g{generation - 1}.hnsw"):
                (self.folder / old).unlink(missing_ok=True)
            self._dirty = False

    def _rebuild(self) -> None:
        self._graph = None
        if self._size:
            graph = self._ensure_graph(self._size)
            graph.add_items(self._vectors[: self._size], self._ids[: self._size])

    def load(self, generation: int) -> None:
        data = np.load(self.folder / f"g{generation}.npz") if generation else None
        if data is None:
            return
        self._size = len(data["ids"])
        self._ids = data["ids"].astype(np.int64)
        self._vectors = np.ascontiguousarray(data["vectors"], dtype=np.float32)
        self._columns = {n: data[f"attr_{n}"].astype(np.int64) for n in self.attrs}
        self._row = {int(i): r for r, i in enumerate(self._ids.tolist())}
        graph_file = self.folder / f"g{generation}.hnsw"
        if graph_file.exists():
            import hnswlib

            self._graph = hnswlib.Index(space="ip", dim=self.dim)
            self._graph.load_index(str(graph_file))
            self._graph.set_ef(EF_SEARCH)


class EmbeddedVectors:
    """A :class:`~loopline.vectors.VectorStore` in a folder of this machine.

    Args:
        path: The folder; created when missing, its collections reloaded when present.

    Example:
        >>> import numpy as np, tempfile
        >>> store = EmbeddedVectors(tempfile.mkdtemp())
        >>> items = store.create("items", dim=2, attrs=["genre"])
        >>> items.upsert(np.array([1, 2]), np.eye(2, dtype=np.float32), {"genre": np.array([0, 1])})
        >>> items.search(np.array([[1.0, 0.0]], np.float32), 1).ids.tolist()
        [[1]]
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._open: dict[str, EmbeddedIndex] = {}

    def _aliases(self) -> dict[str, str]:
        file = self.path / "aliases.json"
        return dict(json.loads(file.read_text())) if file.exists() else {}

    def collections(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if (p / "meta.json").exists())

    def create(
        self, name: str, *, dim: int, metric: str = "ip", attrs: Sequence[str] = ()
    ) -> EmbeddedIndex:
        names = check_schema(name, dim, metric, attrs)
        with self._lock:
            folder = self.path / name
            if (folder / "meta.json").exists() or name in self._aliases():
                raise ConfigError(
                    f"Collection {name!r} already exists (or is an alias) in {self.path}."
                )
            folder.mkdir()
            meta = {"dim": dim, "metric": metric, "attrs": list(names), "generation": 0}
            _write_json(folder / "meta.json", meta)
            index = self._open[name] = EmbeddedIndex(
                folder, name=name, dim=dim, metric=metric, attrs=names
            )
            return index

    def open(self, name: str) -> EmbeddedIndex:
        with self._lock:
            name = self.resolve(name) or name
            if name in self._open:
                return self._open[name]
            folder = self.path / check_name(name)
            if not (folder / "meta.json").exists():
                raise CollectionNotFoundError(
                    f"No collection or alias {name!r} in {self.path} "
                    f"(collections: {self.collections()})."
                )
            meta = json.loads((folder / "meta.json").read_text())
            index = EmbeddedIndex(
                folder, name=name, dim=meta["dim"], metric=meta["metric"], attrs=meta["attrs"]
            )
            index.load(int(meta["generation"]))
            self._open[name] = index
            return index

    def drop(self, name: str) -> None:
        with self._lock:
            pointing = sorted(a for a, c in self._aliases().items() if c == name)
            if pointing:
                raise ConfigError(
                    f"Collection {name!r} is named by alias {pointing}: "
                    "point the alias elsewhere first."
                )
            self._open.pop(name, None)
            shutil.rmtree(self.path / check_name(name), ignore_errors=True)

    def resolve(self, alias: str) -> str | None:
        return self._aliases().get(alias)

    def point(self, alias: str, collection: str) -> None:
        check_name(alias, "alias")
        with self._lock:
            if not (self.path / check_name(collection) / "meta.json").exists():
                raise CollectionNotFoundError(
                    f"No collection {collection!r} in {self.path} to point {alias!r} at."
                )
            if (self.path / alias / "meta.json").exists():
                raise ConfigError(
                    f"{alias!r} is a collection in {self.path}: an alias needs its own name."
                )
            _write_json(self.path / "aliases.json", {**self._aliases(), alias: collection})

    def flush(self) -> None:
        with self._lock:
            for index in self._open.values():
                index.flush()

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._open.clear()
