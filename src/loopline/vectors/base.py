"""The vector-index contract: a store of named collections and aliases, each collection
searched by inner product (or cosine) with optional attribute filters.

Every backend is a :class:`VectorStore` whose collections are :class:`VectorIndex` es.
Ids are non-negative int64 (``-1`` marks "no match" in :class:`Matches`); attributes
are int64 columns declared when the collection is created. The checks every backend
shares (names, dimensions, filters) live here, so all backends refuse the same inputs
with the same messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError, LooplineError

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Where = Mapping[str, int | Sequence[int]]
METRICS = ("ip", "cosine")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_RESERVED = ("id", "vector")


class CollectionNotFoundError(LooplineError, KeyError):
    """No collection (or alias) of that name exists in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Matches(NamedTuple):
    """The answer of a search: row ``i`` holds the matches of query ``i``, best first."""

    ids: I64
    """(n, k) int64; ``-1`` where fewer than k matched."""
    scores: F32
    """(n, k) float32, higher is closer (inner product or cosine); ``-inf`` where no match."""


@runtime_checkable
class VectorIndex(Protocol):
    """One collection: vectors of one dimension, keyed by id, with int64 attributes."""

    name: str
    dim: int
    metric: str
    attrs: tuple[str, ...]

    def upsert(self, ids: I64, vectors: F32, attrs: Mapping[str, I64] | None = None) -> None:
        """Insert or replace the rows ``ids``; every declared attribute is required."""
        ...

    def delete(self, ids: I64) -> None:
        """Remove the rows ``ids`` (ids that are absent are ignored)."""
        ...

    def search(self, queries: F32, k: int, *, where: Where | None = None) -> Matches:
        """The ``k`` closest rows to each query among the rows that match ``where``
        (``attribute == value`` or ``attribute in [values]``, all of them): never a row
        that does not match."""
        ...

    def count(self) -> int: ...

    def ids(self) -> I64:
        """Every id, ascending."""
        ...

    def attributes(self, ids: I64) -> tuple[I64, dict[str, I64]]:
        """The ids among ``ids`` that exist (in the given order) and their attributes."""
        ...


@runtime_checkable
class VectorStore(Protocol):
    """A backend: named collections, and aliases naming collections."""

    def create(
        self, name: str, *, dim: int, metric: str = "ip", attrs: Sequence[str] = ()
    ) -> VectorIndex:
        """A new, empty collection (an error if ``name`` exists)."""
        ...

    def open(self, name: str) -> VectorIndex:
        """A collection by name, or by alias (resolved once, now)."""
        ...

    def drop(self, name: str) -> None:
        """Delete a collection and its data; refused while an alias names it."""
        ...

    def resolve(self, alias: str) -> str | None:
        """The collection ``alias`` names, or None."""
        ...

    def point(self, alias: str, collection: str) -> None:
        """Create ``alias``, or move it, to ``collection``, atomically."""
        ...

    def collections(self) -> list[str]: ...

    def close(self) -> None: ...


def check_name(name: str, what: str = "collection") -> str:
    """``name`` if it is an identifier a filter expression and a folder can both hold."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"The {what} name must be an identifier (letters, digits, underscores; not "
            f"starting with a digit; at most 63 characters). Got {name!r}."
        )
    return name


def check_schema(name: str, dim: int, metric: str, attrs: Sequence[str]) -> tuple[str, ...]:
    """Validate ``create``'s arguments; the attribute names as a tuple."""
    check_name(name)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
        raise ConfigError(f"The 'dim' of collection {name!r} must be a positive int. Got {dim!r}.")
    if metric not in METRICS:
        raise ConfigError(
            f"The 'metric' of collection {name!r} must be one of {METRICS}. Got {metric!r}."
        )
    names = tuple(check_name(a, "attribute") for a in attrs)
    if len(set(names)) != len(names) or set(names) & set(_RESERVED):
        raise ConfigError(
            f"The attributes of collection {name!r} must be distinct and not {_RESERVED}. "
            f"Got {names}."
        )
    return names


def check_ids(index: VectorIndex, ids: object) -> I64:
    out = np.asarray(ids)
    if out.ndim != 1 or (out.size and not np.issubdtype(out.dtype, np.integer)):
        raise ConfigError(
            f"The ids for collection {index.name!r} must be a 1-d integer array. "
            f"Got dtype {out.dtype}, shape {out.shape}."
        )
    out = out.astype(np.int64)
    if out.size and out.min() < 0:
        raise ConfigError(
            f"The ids for collection {index.name!r} must be >= 0. Got {int(out.min())}."
        )
    return out


def check_vectors(index: VectorIndex, vectors: object, rows: int | None = None) -> F32:
    """``vectors`` as a C-contiguous (rows, dim) float32 array, normalised for cosine."""
    out = np.asarray(vectors, dtype=np.float32)
    if out.ndim == 1:
        out = out[None, :]
    if out.ndim != 2 or out.shape[1] != index.dim or (rows is not None and len(out) != rows):
        want = f"({rows if rows is not None else 'n'}, {index.dim})"
        raise ConfigError(
            f"Collection {index.name!r} holds {index.dim}-dimensional vectors: expected shape "
            f"{want}, got {out.shape}. Encode with the model this collection was built for."
        )
    if not np.isfinite(out).all():
        raise ConfigError(f"The vectors for collection {index.name!r} contain NaN or infinity.")
    if index.metric == "cosine":
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out = (out / np.where(norms == 0, 1, norms)).astype(np.float32)
    return np.ascontiguousarray(out, dtype=np.float32)


def check_attrs(
    index: VectorIndex, attrs: Mapping[str, object] | None, rows: int
) -> dict[str, I64]:
    given = dict(attrs or {})
    if set(given) != set(index.attrs):
        raise ConfigError(
            f"Collection {index.name!r} has attributes {list(index.attrs)}: upsert needs each of "
            f"them, and no other. Got {sorted(given)}."
        )
    out = {}
    for name, values in given.items():
        array = np.asarray(values)
        if array.shape != (rows,) or (rows and not np.issubdtype(array.dtype, np.integer)):
            raise ConfigError(
                f"Attribute {name!r} of collection {index.name!r} needs {rows} integers. "
                f"Got dtype {array.dtype}, shape {array.shape}."
            )
        out[name] = array.astype(np.int64)
    return out


def check_where(index: VectorIndex, where: Where | None) -> dict[str, I64]:
    """Each filtered attribute's allowed values (integers only: nothing else can reach a
    backend's filter expression)."""
    out: dict[str, I64] = {}
    for name, value in (where or {}).items():
        if name not in index.attrs:
            raise ConfigError(
                f"Collection {index.name!r} cannot filter on {name!r}: its attributes are "
                f"{list(index.attrs)}."
            )
        values = [value] if isinstance(value, int | np.integer) else list(value)
        if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
            raise ConfigError(
                f"The filter on {name!r} of collection {index.name!r} takes an int or a list of "
                f"ints. Got {value!r}."
            )
        out[name] = np.asarray(values, dtype=np.int64)
    return out


def check_k(index: VectorIndex, k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ConfigError(
            f"k for a search of collection {index.name!r} must be a positive int. Got {k!r}."
        )
    return k


def empty_matches(n: int, k: int) -> Matches:
    return Matches(np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32))


def exact_top_k(vectors: F32, ids: I64, queries: F32, k: int) -> Matches:
    """The exact ``k`` best rows of ``vectors`` (keyed by ``ids``) for each query."""
    out = empty_matches(len(queries), k)
    take = min(k, len(ids))
    if take == 0:
        return out
    scores = queries @ vectors.T
    top = np.argpartition(-scores, take - 1, axis=1)[:, :take] if take < len(ids) else None
    if top is None:
        top = np.broadcast_to(np.arange(len(ids)), (len(queries), len(ids)))
    best = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-best, axis=1, kind="stable")
    out.ids[:, :take] = ids[np.take_along_axis(top, order, axis=1)]
    out.scores[:, :take] = np.take_along_axis(best, order, axis=1)
    return out
