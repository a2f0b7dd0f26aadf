"""Swapping the recommender's embedding model behind the ``items`` alias, under load.

A registered version's item vectors go into a collection of their own
(``items__v<N>``) beside the live one, through :class:`~loopline.vectors.VersionedIndex`::

    begin ─▶ dual writes ─▶ backfill ─▶ shadow gate ─▶ promote ─▶ (rollback) ─▶ finish

- **Encoders**: each version embeds the items of its catalogue with its own vectors and
  an item newer than its catalogue with that item's content embedding mapped into its
  space (:class:`ItemEncoder`), so an item added during the swap
  (:meth:`EmbeddingSwap.add_items`) is written to both collections, each in its model's
  space, and the backfill misses none.
- **Shadow gate**: on a sample of users with held-out interactions, the overlap@k of the
  two versions' embedding retrieval, and each version's recall@k of the held-out items
  (training items left out), through its own query encoder and collection. The promote
  is never forced: a version that fails the gate is not promoted.
- **Rollback**: after the promote both collections stay written, so moving the alias
  back is one atomic write (:func:`rollback_embeddings`) until :meth:`EmbeddingSwap.finish`
  drops the old one (the next swap does that first).

Serving needs nothing from this: each request reads the alias once and answers with
that version's retrieval (:mod:`loopline.apps.recs.pipeline`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from loopline.apps.recs.content import ContentMap
from loopline.apps.recs.retrieval import Retrieval
from loopline.apps.recs.train import (
    ALIAS,
    ATTRS,
    MODEL,
    Catalogue,
    content_map,
    first_genre,
    item_vectors,
    load_version,
    version_label,
    version_number,
)
from loopline.exceptions import ConfigError, LooplineError
from loopline.registry import Registry
from loopline.vectors import Backfill, Matches, ShadowReport, VectorStore, VersionedIndex

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


class SwapRefusedError(LooplineError, RuntimeError):
    """A version failed the shadow gate: the alias still names the live version."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SwapConfig:
    """The shadow gate and the backfill of an embedding swap.

    ``k``: the depth of overlap@k and recall@k; ``users``: the sampled users (those
    with held-out items); the gate passes when the overlap is at least ``min_overlap``
    and the new recall at least the old one minus ``max_quality_drop``.
    """

    k: int = 50
    users: int = 500
    min_overlap: float = 0.2
    max_quality_drop: float = 0.02
    chunk: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("k", "users", "chunk"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"SwapConfig's {name!r} must be at least 1. Got {getattr(self, name)}."
                )
        if not 0.0 <= self.min_overlap <= 1.0:
            raise ConfigError(
                f"SwapConfig's 'min_overlap' must be in [0, 1]. Got {self.min_overlap}."
            )
        if self.max_quality_drop < 0:
            raise ConfigError(
                f"SwapConfig's 'max_quality_drop' must be >= 0. Got {self.max_quality_drop}."
            )


class ItemEncoder:
    """One version's item encoder: catalogue items to its vectors, newer items (ids past
    the catalogue, their content in ``new_content``) to their mapped content."""

    def __init__(
        self, retrieval: Retrieval, catalogue: Catalogue, new_content: Mapping[int, F32]
    ) -> None:
        self.vectors_ = item_vectors(retrieval, catalogue.items)
        self.map_: ContentMap | None = content_map(retrieval, catalogue.items, self.vectors_)
        self.new_content = new_content

    def __call__(self, ids: I64) -> F32:
        ids = np.asarray(ids, dtype=np.int64)
        n = len(self.vectors_)
        out = np.zeros((len(ids), self.vectors_.shape[1]), dtype=np.float32)
        known = ids < n
        out[known] = self.vectors_[ids[known]]
        if (~known).any():
            unknown = [int(i) for i in ids[~known] if int(i) not in self.new_content]
            if unknown or self.map_ is None:
                raise ConfigError(
                    f"Items {unknown[:5]} are past this version's catalogue of {n} items and "
                    "their content embedding is unknown: pass it in 'new_content'."
                )
            content = np.stack([self.new_content[int(i)] for i in ids[~known]])
            out[~known] = self.map_(np.asarray(content, dtype=np.float32))
        return out


@dataclass(frozen=True, slots=True)
class Embedding:
    """A registry version as a swap needs it: its retrieval, catalogue and item encoder."""

    label: str
    retrieval: Retrieval
    catalogue: Catalogue
    encoder: ItemEncoder
    users: Mapping[str, int]  # user id -> row of the catalogue

    @classmethod
    def of(cls, registry: Registry, label: str, new_content: Mapping[int, F32]) -> Embedding:
        retrieval, catalogue = load_version(registry.resolve(MODEL, version_number(label)))
        encoder = ItemEncoder(retrieval, catalogue, new_content)
        users = {u: i for i, u in enumerate(catalogue.user_ids)}
        return cls(label, retrieval, catalogue, encoder, users)

    def query(self, user: str) -> F32:
        """The embedding query of a known user (their factor), as serving encodes it."""
        u = self.users[user]
        return self.retrieval.query(u, self.history(u))

    def history(self, u: int) -> I64:
        h = self.catalogue.history
        return np.asarray(h.indices[h.indptr[u] : h.indptr[u + 1]], dtype=np.int64)


@dataclass(frozen=True, slots=True, kw_only=True)
class SwapResult:
    old: str
    new: str
    backfill: Backfill
    shadow: ShadowReport
    promoted: bool


class EmbeddingSwap:
    """One swap of the ``items`` alias to registry version ``version``; each step a
    method, :meth:`run` all of them up to the gated promote.

    Args:
        store: The vector store (its ``items`` alias live already).
        registry: Where both versions' retrieval state is read from.
        version: The registry version to swap to.
        held_out: User x item interactions the versions did not train on (the rows and
            columns of the new version's catalogue), for the gate's recall.
        new_content: Content embeddings of items newer than the catalogues (by id),
            shared with :meth:`add_items`.
        state: The swap's state file (needed for a Milvus store).
    """

    def __init__(
        self,
        store: VectorStore,
        registry: Registry,
        version: int,
        *,
        held_out: sp.csr_matrix,
        config: SwapConfig | None = None,
        new_content: dict[int, F32] | None = None,
        state: Path | None = None,
    ) -> None:
        self.config = config or SwapConfig()
        self.registry, self.held_out = registry, sp.csr_matrix(held_out)
        self.new_content: dict[int, F32] = new_content if new_content is not None else {}
        self.index = VersionedIndex(store, alias=ALIAS, encoders={}, attrs=ATTRS, state=state)
        if self.index.live is None:
            raise ConfigError(
                f"The {ALIAS!r} alias has no live version to swap from: index the first "
                "version with train_and_register(vectors=...)."
            )
        self.old, self.new = self.index.live, version_label(version)
        labels = {self.old, self.new, *([self.index.other] if self.index.other else [])}
        self.embeddings = {v: Embedding.of(registry, v, self.new_content) for v in labels}
        self.index.encoders.update({v: e.encoder for v, e in self.embeddings.items()})

    def begin(self) -> None:
        """Create the new collection (dual writes from now on); a swap to the same
        version left in ``dual_write`` is resumed, any other left over is finished."""
        i = self.index
        if i.phase == "dual_write" and i.other == self.new:
            return  # resumed: the backfill goes on from its checkpoint
        if i.phase in ("dual_write", "promoted"):
            i.finish()  # the alias's version stays; the other is dropped
        self.old = str(i.live)
        if self.old == self.new:
            raise ConfigError(f"Version {self.new!r} is live already: nothing to swap.")
        i.begin(self.new, dim=self.embeddings[self.new].encoder.vectors_.shape[1])

    def add_items(self, ids: I64, content: F32, genre: I64) -> None:
        """New items (ids past the catalogues) into every written collection, each
        version's vectors from their content."""
        ids = np.asarray(ids, dtype=np.int64)
        self.new_content.update(zip(ids.tolist(), np.asarray(content, np.float32), strict=True))
        self.index.upsert(ids, {"genre": np.asarray(genre, dtype=np.int64)})
        for version in (self.index.live, self.index.other):
            if version is not None:
                flush(self.index, version)

    def backfill(self, progress: Callable[[Backfill], None] | None = None) -> Backfill:
        return self.index.backfill(chunk=self.config.chunk, progress=progress)

    def shadow(self) -> ShadowReport:
        """Overlap@k and held-out recall@k of the two versions on sampled users."""
        c = self.config
        ids = self.embeddings[self.new].catalogue.user_ids
        rows = np.flatnonzero(np.diff(self.held_out.indptr))
        rng = np.random.default_rng(c.seed)
        both = [u for u in rng.permutation(rows) if ids[u] in self.embeddings[self.old].users]
        sample = [ids[u] for u in sorted(both[: c.users])]  # users both versions know

        def queries(label: str) -> F32:
            return np.stack([self.embeddings[label].query(u) for u in sample])

        return self.index.shadow(
            queries, k=c.k, quality=lambda v, found: self._recall(v, sample, found),
            min_overlap=c.min_overlap, max_quality_drop=c.max_quality_drop,
        )  # fmt: skip

    def _recall(self, label: str, users: list[str], found: Matches) -> float:
        """Held-out items among each user's top-k, the items either version trained on
        left out (of the held-out set too, so neither is scored on its training data)."""
        e, new = self.embeddings[label], self.embeddings[self.new]
        h, n, recalls = self.held_out, len(e.catalogue.item_ids), []
        for row, user in zip(found.ids, users, strict=True):
            nu = new.users[user]
            seen = {
                v.catalogue.item_ids[i]
                for v in (self.embeddings[self.old], new)
                for i in v.history(v.users[user]).tolist()
            }
            held = {new.catalogue.item_ids[i] for i in h.indices[h.indptr[nu] : h.indptr[nu + 1]]}
            held -= seen
            got = {e.catalogue.item_ids[i] for i in row.tolist() if 0 <= i < n} - seen
            if held:
                recalls.append(len(held & got) / min(len(held), self.config.k))
        return float(np.mean(recalls)) if recalls else 0.0

    def promote(self) -> None:
        """Move the alias to the new version: refused unless the last shadow passed."""
        self.index.promote()

    def rollback(self) -> None:
        self.index.rollback()

    def finish(self) -> None:
        self.index.finish()

    def run(self, progress: Callable[[Backfill], None] | None = None) -> SwapResult:
        """Begin, backfill, shadow; promote if the gate passed, else drop the candidate.
        The gate's verdict is recorded in the registry's history of the new version."""
        self.begin()
        done = self.backfill(progress)
        report = self.shadow()
        if report.passed:
            self.promote()
        else:
            self.finish()  # the candidate's collection dropped; the live one untouched
        self.registry.record(
            MODEL, version_number(self.new), "embedding swap gate", trigger="swap",
            passed=report.passed, why=describe(report),
        )  # fmt: skip
        return SwapResult(
            old=self.old, new=self.new, backfill=done, shadow=report, promoted=report.passed
        )


def describe(report: ShadowReport) -> str:
    """The gate's verdict in one line."""
    return (
        f"{report.new} beside {report.old} on {report.queries} users: "
        f"overlap@{report.k} {report.overlap_at_k:.3f} (min {report.min_overlap}), "
        f"recall@{report.k} {report.quality_new:.4f} against {report.quality_old:.4f} "
        f"(max drop {report.max_quality_drop}): {'passed' if report.passed else 'failed'}"
    )


def index_first(
    store: VectorStore,
    version: int,
    retrieval: Retrieval,
    catalogue: Catalogue,
    *,
    state: Path | None = None,
) -> VersionedIndex:
    """The first version's items into an empty ``items`` alias, live at once."""
    label = version_label(version)
    encoder = ItemEncoder(retrieval, catalogue, {})
    index = VersionedIndex(store, alias=ALIAS, encoders={label: encoder}, attrs=ATTRS, state=state)
    index.begin(label, dim=encoder.vectors_.shape[1])
    ids = np.arange(len(encoder.vectors_), dtype=np.int64)
    index.upsert(ids, {"genre": first_genre(catalogue.items)})
    flush(index, label)
    return index


def flush(index: VersionedIndex, version: str) -> None:
    """Make ``version``'s collection durable where the store buffers writes (an embedded
    folder), so a serving process that opens it later sees them."""
    collection = index.store.open(index.collection(version))
    done = getattr(collection, "flush", None)
    if done is not None:
        done()


def index_version(
    store: VectorStore,
    registry: Registry,
    version: int,
    retrieval: Retrieval,
    catalogue: Catalogue,
    *,
    held_out: sp.csr_matrix | None,
    config: SwapConfig | None = None,
    state: Path | None = None,
    progress: Callable[[Backfill], None] | None = None,
) -> SwapResult | None:
    """Registry version ``version``'s items into the ``items`` alias: the first version
    live at once (None returned); a later one through :meth:`EmbeddingSwap.run`.

    Raises:
        SwapRefusedError: The shadow gate failed (the live version still serves).
    """
    index = VersionedIndex(store, alias=ALIAS, encoders={}, attrs=ATTRS, state=state)
    if index.phase == "empty":
        index_first(store, version, retrieval, catalogue, state=state)
        return None
    if held_out is None:
        raise ConfigError(
            f"Swapping the {ALIAS!r} alias to version {version} needs held-out interactions "
            "for the shadow gate's recall: pass 'test' (or 'held_out')."
        )
    swap = EmbeddingSwap(store, registry, version, held_out=held_out, config=config, state=state)
    result = swap.run(progress)
    if not result.promoted:
        raise SwapRefusedError(
            f"Registry version {version} of {MODEL!r} is registered but not promoted: its "
            f"embeddings failed the shadow gate ({describe(result.shadow)}). The {ALIAS!r} "
            f"alias still names {result.old}. Compare the versions' metrics, or loosen "
            "SwapConfig's 'min_overlap'/'max_quality_drop' if the change is intended."
        )
    return result


def rollback_embeddings(store: VectorStore, *, state: Path | None = None) -> str:
    """Move the ``items`` alias back to the version before the last promote (both
    collections are still there); return the version now live."""
    index = VersionedIndex(store, alias=ALIAS, encoders={}, attrs=ATTRS, state=state)
    index.rollback()
    return str(index.live)
