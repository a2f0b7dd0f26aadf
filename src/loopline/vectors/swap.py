"""Versioned collections: swapping the embedding model behind an alias without a gap.

One collection per embedding-model version, ``<alias>__<version>``; the alias names the
live one. A swap::

    live ──begin──▶ dual_write ──backfill, shadow──▶ promote ──▶ promoted ──finish──▶ live
                         ▲                                         │
                         └──────────────── rollback ───────────────┘

``begin`` creates the new collection; from then on every ``upsert``/``delete`` goes to
both collections, each with its own model's vectors. ``backfill`` embeds every item of
the live collection with the new model, in chunks, saving a checkpoint (the last id
done) after each, so a killed backfill resumes where it stopped. ``shadow`` compares the
two on sample queries. ``promote`` moves the alias (atomically, in the store) and keeps
writing both, so ``rollback`` is one alias move back. ``finish`` drops the collection the
alias does not name and stops the dual writes.

Reads: :meth:`VersionedIndex.snapshot` resolves the alias once and returns the version
with its concrete collection; the caller encodes its query with that version's query
encoder and searches that collection, so an answer never mixes two models' vectors and
the query always matches the index it searches. The answer carries its version.

The state (phase, versions, dimensions, backfill checkpoint, last shadow verdict) is a
small JSON file, replaced atomically: by default ``<alias>.versions.json`` in an
:class:`~loopline.vectors.EmbeddedVectors` folder; any path the caller gives otherwise.
One process runs a swap (writes are serialised by a lock in that process); any number of
processes may read through snapshots.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from loopline.exceptions import ConfigError
from loopline.vectors.base import F32, I64, Matches, VectorIndex, VectorStore, Where, check_name

Encoder = Callable[[I64], F32]  # item ids -> that version's vectors (n, dim)


@dataclass(frozen=True, kw_only=True, slots=True)
class Backfill:
    """Progress of a backfill: ``done`` of ``total`` ids embedded, up to id ``after``."""

    version: str
    done: int
    total: int
    after: int
    complete: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class ShadowReport:
    """The new version beside the old on sample queries.

    ``overlap_at_k``: the mean share of the old top-k that the new top-k also returns;
    ``quality_old``/``quality_new``: the caller's offline score of each version's answers.
    It passes when the overlap is at least ``min_overlap`` and the new quality is at least
    the old one minus ``max_quality_drop``.
    """

    old: str
    new: str
    k: int
    queries: int
    overlap_at_k: float
    quality_old: float
    quality_new: float
    min_overlap: float
    max_quality_drop: float
    passed: bool


class Answer(NamedTuple):
    """A search's :class:`~loopline.vectors.Matches` and the version that answered it."""

    version: str
    ids: I64
    scores: F32


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent (version, collection) pair, resolved from the alias once."""

    version: str
    index: VectorIndex

    def search(self, queries: F32, k: int, *, where: Where | None = None) -> Answer:
        """Search with queries encoded by this version's query encoder."""
        found = self.index.search(queries, k, where=where)
        return Answer(self.version, found.ids, found.scores)


class VersionedIndex:
    """The collections of one alias, one per embedding-model version, and their swap.

    Args:
        store: Where the collections live.
        alias: The name readers use; collections are ``<alias>__<version>``.
        encoders: Each version's item encoder (item ids -> vectors); a version's
            encoder is needed while it is written to.
        attrs: The attribute names of every version's collection.
        metric: ``"ip"`` or ``"cosine"``.
        state: The state file (default: ``<alias>.versions.json`` in an embedded store's
            folder; required for other stores).
    """

    def __init__(
        self,
        store: VectorStore,
        *,
        alias: str,
        encoders: Mapping[str, Encoder],
        attrs: Sequence[str] = (),
        metric: str = "ip",
        state: Path | None = None,
    ) -> None:
        self.store = store
        self.alias = check_name(alias, "alias")
        self.encoders = dict(encoders)
        self.attrs = tuple(attrs)
        self.metric = metric
        folder = getattr(store, "path", None)
        if state is None and not isinstance(folder, Path):
            raise ConfigError(f"VersionedIndex {alias!r} needs a 'state' file path for this store.")
        self.state = state if state is not None else Path(str(folder)) / f"{alias}.versions.json"
        self._lock = threading.RLock()
        self._indexes: dict[str, VectorIndex] = {}
        self._state: dict[str, Any] = (
            json.loads(self.state.read_text())
            if self.state.exists()
            else {"phase": "empty", "dims": {}}
        )

    # -- state ---------------------------------------------------------------------
    @property
    def phase(self) -> str:
        """``empty``, ``live``, ``dual_write`` or ``promoted``."""
        return str(self._state["phase"])

    @property
    def live(self) -> str | None:
        return self._state.get("live")

    @property
    def other(self) -> str | None:
        """The version written beside the live one (during a swap)."""
        return self._state.get("other")

    def collection(self, version: str) -> str:
        return f"{self.alias}__{version}"

    def _save(self, **changes: Any) -> None:
        self._state = {**self._state, **changes}
        tmp = self.state.with_name(f".{self.state.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._state, sort_keys=True))
        os.replace(tmp, self.state)

    def _index(self, version: str) -> VectorIndex:
        if version not in self._indexes:
            self._indexes[version] = self.store.open(self.collection(version))
        return self._indexes[version]

    def _written(self) -> list[str]:
        return [v for v in (self.live, self.other) if v is not None]

    def _need(self, *phases: str) -> None:
        if self.phase not in phases:
            raise ConfigError(
                f"VersionedIndex {self.alias!r} is in phase {self.phase!r}; this needs {phases}."
            )

    # -- writes --------------------------------------------------------------------
    def begin(self, version: str, *, dim: int) -> None:
        """Create ``version``'s collection: the live one if there is none yet, else the
        candidate, written beside the live one from now on."""
        check_name(version, "version")
        with self._lock:
            self._need("empty", "live")
            if version not in self.encoders:
                raise ConfigError(
                    f"No encoder for version {version!r} (encoders: {sorted(self.encoders)})."
                )
            name = self.collection(version)
            self._indexes[version] = self.store.create(
                name, dim=dim, metric=self.metric, attrs=self.attrs
            )
            dims = {**self._state["dims"], version: dim}
            if self.phase == "empty":
                self.store.point(self.alias, name)
                self._save(
                    phase="live", live=version, other=None, dims=dims, backfill=None, shadow=None
                )
            else:
                backfill = asdict(
                    Backfill(version=version, done=0, total=0, after=-1, complete=False)
                )
                self._save(
                    phase="dual_write", other=version, dims=dims, backfill=backfill, shadow=None
                )

    def upsert(
        self,
        ids: I64,
        attrs: Mapping[str, I64] | None = None,
        *,
        vectors: Mapping[str, F32] | None = None,
    ) -> None:
        """Insert or replace items in every version written now, each with its encoder's
        vectors (or the ones given in ``vectors`` for that version)."""
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            self._need("live", "dual_write", "promoted")
            for version in self._written():
                given = (vectors or {}).get(version)
                embedded = given if given is not None else self.encoders[version](ids)
                self._index(version).upsert(ids, embedded, attrs)

    def delete(self, ids: I64) -> None:
        with self._lock:
            for version in self._written():
                self._index(version).delete(np.asarray(ids, dtype=np.int64))

    def backfill(
        self, *, chunk: int = 1000, progress: Callable[[Backfill], None] | None = None
    ) -> Backfill:
        """Embed every item of the live collection with the candidate's encoder, ``chunk``
        ids at a time in id order, checkpointing after each chunk; resumes after the last
        checkpoint. Items written meanwhile are dual-written, so none is missed."""
        with self._lock:
            self._need("dual_write")
            live, new = self._index(str(self.live)), str(self.other)
            ids = live.ids()
        state = Backfill(**self._state["backfill"])
        todo = ids[ids > state.after]
        state = Backfill(
            version=new,
            done=state.done,
            total=state.done + len(todo),
            after=state.after,
            complete=False,
        )
        for at in range(0, len(todo), chunk):
            with self._lock:  # a chunk is never interleaved with a write of its items
                present, attrs = live.attributes(todo[at : at + chunk])
                if len(present):
                    self._index(new).upsert(present, self.encoders[new](present), attrs)
                flush = getattr(self._index(new), "flush", None)
                if flush is not None:  # an embedded index: durable before its checkpoint
                    flush()
                last = int(todo[min(at + chunk, len(todo)) - 1])
                state = Backfill(
                    version=new, done=state.done + len(todo[at : at + chunk]), total=state.total,
                    after=last, complete=at + chunk >= len(todo),
                )  # fmt: skip
                self._save(backfill=asdict(state))
            if progress is not None:
                progress(state)
        if not state.complete:
            state = Backfill(
                version=new, done=state.done, total=state.total, after=state.after, complete=True
            )
            self._save(backfill=asdict(state))
        return state

    # -- the swap ------------------------------------------------------------------
    def shadow(
        self,
        queries: Callable[[str], F32],
        *,
        k: int = 10,
        quality: Callable[[str, Matches], float] | None = None,
        min_overlap: float = 0.0,
        max_quality_drop: float = 0.0,
    ) -> ShadowReport:
        """Compare the candidate with the live version on sample queries.

        Args:
            queries: The sample queries, encoded by the given version's query encoder (the
                same queries, in the same order, for each version).
            quality: An offline score of a version's answers (higher is better).
        """
        self._need("dual_write")
        old, new = str(self.live), str(self.other)
        found = {v: self._index(v).search(queries(v), k) for v in (old, new)}
        overlaps = [
            len(set(a[a >= 0].tolist()) & set(b[b >= 0].tolist())) / max(1, int((a >= 0).sum()))
            for a, b in zip(found[old].ids, found[new].ids, strict=True)
        ]
        score = {v: float(quality(v, found[v])) if quality else 0.0 for v in (old, new)}
        overlap = float(np.mean(overlaps)) if overlaps else 0.0
        report = ShadowReport(
            old=old, new=new, k=k, queries=len(overlaps), overlap_at_k=overlap,
            quality_old=score[old], quality_new=score[new], min_overlap=min_overlap,
            max_quality_drop=max_quality_drop,
            passed=overlap >= min_overlap and score[new] >= score[old] - max_quality_drop,
        )  # fmt: skip
        with self._lock:
            self._save(shadow=asdict(report))
        return report

    def promote(self, *, force: bool = False) -> None:
        """Move the alias to the candidate (its backfill complete and, unless ``force``,
        its last shadow report passed); both stay written, for :meth:`rollback`."""
        with self._lock:
            self._need("dual_write")
            if not (self._state.get("backfill") or {}).get("complete"):
                raise ConfigError(
                    f"Version {self.other!r} is not backfilled: run backfill() before promote()."
                )
            shadow = self._state.get("shadow") or {}
            if not force and not (shadow.get("passed") and shadow.get("new") == self.other):
                raise ConfigError(
                    f"Version {self.other!r} has no passing shadow report: "
                    "run shadow(), or promote(force=True)."
                )
            self.store.point(self.alias, self.collection(str(self.other)))
            self._save(phase="promoted", live=self.other, other=self.live)

    def rollback(self) -> None:
        """Move the alias back to the previous version; the candidate is still written."""
        with self._lock:
            self._need("promoted")
            self.store.point(self.alias, self.collection(str(self.other)))
            self._save(phase="dual_write", live=self.other, other=self.live)

    def finish(self) -> None:
        """Stop writing the version the alias does not name, and drop its collection
        (after a promote: the old one; after a rollback: the abandoned candidate)."""
        with self._lock:
            self._need("dual_write", "promoted")
            dropped = str(self.other)
            self._indexes.pop(dropped, None)
            self.store.drop(self.collection(dropped))
            dims = {v: d for v, d in self._state["dims"].items() if v != dropped}
            self._save(phase="live", other=None, dims=dims, backfill=None, shadow=None)

    # -- reads ---------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The live version and its collection, from one read of the alias."""
        name = self.store.resolve(self.alias)
        prefix = f"{self.alias}__"
        if name is None or not name.startswith(prefix):
            raise ConfigError(
                f"Alias {self.alias!r} names no version's collection (it names {name!r})."
            )
        version = name[len(prefix) :]
        index = self._indexes.get(version)
        if index is None or index.name != name:
            index = self.store.open(name)
            self._indexes[version] = index
        return Snapshot(version, index)
