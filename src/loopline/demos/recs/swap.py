"""An embedding swap and a rollback through the recommendation service, under load, counted.

:func:`swap_under_load` trains two versions of the recommender (small models, different
seeds) into a state folder, serves the first in process (the service's ASGI app), and
sends continuous ``POST /v1/recommend`` load from several clients (a new request id each)
while a thread runs the whole swap to the second version (begin, new items dual-written
before and during the backfill, backfill, shadow gate, promote) and then a rollback. It
counts, never asserts:

- **failed**: a request that raised or got any status but 200;
- **degraded**: an answer without the vector index (``embedding_version`` null);
- **mixed**: an answer whose ``embedding_version`` was not live at any moment of its
  request, or one of whose ``embedding``-sourced items is not one that version's
  embedding retriever (its query encoder, its collection) ranks above the other
  retrievers for that user, recomputed here from the version's state
  (:class:`MixedCheck`). An answer encoded with one version's query and searched in the
  other's collection fails it (``tests/recs/test_swap_http.py`` shows that it does).
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from loopline.apps.recs.data import MovieLens, load
from loopline.apps.recs.model import Recommender, RecsConfig
from loopline.apps.recs.ranking import User
from loopline.apps.recs.retrieval import RetrievalConfig, best
from loopline.apps.recs.service import RecsService, ServeOptions, build
from loopline.apps.recs.split import random_split
from loopline.apps.recs.swap import Embedding, EmbeddingSwap, SwapConfig
from loopline.apps.recs.train import Catalogue, first_genre, items_of, train_and_register
from loopline.registry import Registry
from loopline.serving import KeyRing, new_key
from loopline.training import BoostingConfig
from loopline.vectors import Backfill, open_vectors

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
SMALL = RecsConfig(
    retrieval=RetrievalConfig(factors=16, iterations=5),
    per_retriever=50,
    ranker=BoostingConfig(objective="lambdarank", num_boost_round=30, num_leaves=7,
                          min_child_samples=50, threads=1),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Trained:
    """Two registered versions: 1 indexed and champion, 2 registered only."""

    state: Path
    data: MovieLens
    held_out: Any  # user x item, the random fifth neither version trained on
    key: str

    @property
    def registry_uri(self) -> str:
        return f"sqlite:///{self.state / 'registry' / 'mlflow.db'}"

    def registry(self) -> Registry:
        return Registry(self.registry_uri, root=self.state / "registry")


def prepare(root: Path, *, config: RecsConfig = SMALL) -> Trained:
    """Train version 1 (its items indexed, the champion) and version 2 (another seed,
    registered only) on one split of MovieLens-100K, and an API key, under ``root``."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    state = root / "state"
    data = load()
    split = random_split(data.user, data.item, (data.n_users, data.n_items), seed=0)
    items = items_of(data)
    registry = Registry(root=state / "registry")
    with threadpool_limits(1, "blas"):
        for seed in (0, 1):  # another seed: other factors (a query of one fits not the other)
            seeded = replace(config, retrieval=replace(config.retrieval, seed=seed))
            train_and_register(
                registry, data, split.train, items, config=seeded, seed=seed, promote=seed == 0,
                vectors=open_vectors(state / "vectors") if seed == 0 else None,
            )  # fmt: skip
    key, stored = new_key("swap", ["score"])
    KeyRing([stored]).save(state / "keys.json")
    return Trained(state, data, split.test, key)


def serve(trained: Trained, scratch: Path) -> RecsService:
    """The service on ``trained``'s state (not following the champion; logs in ``scratch``)."""
    return build(
        ServeOptions(
            state=trained.state, registry=trained.registry_uri, watch_s=0,
            events=f"file://{scratch / 'events.db'}", decisions=str(scratch / "log.db"),
        )
    )  # fmt: skip


def new_releases(catalogue: Catalogue, n: int) -> tuple[I64, F32, I64]:
    """``n`` items newer than the catalogue (ids past it): re-releases of its first
    films, with their content embeddings and first genres."""
    pick = np.arange(n) % len(catalogue.item_ids)
    ids = np.arange(len(catalogue.item_ids), len(catalogue.item_ids) + n, dtype=np.int64)
    return ids, catalogue.items.content[pick], first_genre(catalogue.items)[pick]


class MixedCheck:
    """Whether an answer's ``embedding`` items came from its own version's collection.

    For the answer's version and user, the candidates are recomputed as the pipeline
    makes them (that version's query encoder, an exact search of its item vectors, its
    co-occurrence and popularity): each item the answer says came from ``embedding``
    must be among them with its embedding rank the best of its three ranks. The served
    search is exact at this catalogue's size (under 2,048 rows), so its ranks are these.
    """

    def __init__(self, embeddings: Mapping[str, Embedding], *, config: RecsConfig) -> None:
        self.embeddings, self.config = embeddings, config
        self._ranks: dict[tuple[str, str], dict[str, F32]] = {}

    def ranks(self, version: str, user: str) -> dict[str, F32]:
        """Each candidate's (embedding, co-occurrence, popularity) ranks, by item id."""
        found = self._ranks.get((version, user))
        if found is None:
            e = self.embeddings[version]
            cat, u, vectors = e.catalogue, e.users[user], e.encoder.vectors_
            who = User(
                index=u, history=e.history(u), session=np.zeros(0, np.int64),
                age=int(cat.age[u]), gender=int(cat.gender[u]), segment=int(cat.segment[u]),
            )  # fmt: skip

            def search(query: F32, n: int) -> tuple[I64, F32]:
                scores = vectors @ query
                top = best(scores, n, np.zeros(0, np.int64))
                return top, scores[top]

            recommender = Recommender(
                retrieval=e.retrieval, items=cat.items, ranker=None, config=self.config
            )
            c, _ = recommender.candidates(who, search)
            found = {cat.item_ids[i]: row for i, row in zip(c.items, c.ranks, strict=True)}
            self._ranks[(version, user)] = found
        return found

    def mixed(self, user: str, body: Mapping[str, Any]) -> bool:
        version = body["embedding_version"]
        if version not in self.embeddings:
            return version is not None
        ranks = self.ranks(version, user)
        for item, source in zip(body["items"], body["sources"], strict=True):
            row = ranks.get(item)
            if source == "embedding" and (row is None or row[0] > row[1:].min()):
                return True
        return False


@dataclass
class Timeline:
    """When the alias moved: each change between ``before`` and ``after`` (monotonic)."""

    first: str
    changes: list[tuple[float, float, str]] = field(default_factory=list)

    def move(self, to: str, action: Callable[[], None]) -> None:
        before = time.monotonic()
        action()
        self.changes.append((before, time.monotonic(), to))

    def live_between(self, start: float, end: float) -> set[str]:
        """Every version the alias may have named at some moment of [start, end]."""
        out, live, since = set(), self.first, -math.inf
        for before, after, to in self.changes:
            if since <= end and start <= before:  # the steady stretch before this move
                out.add(live)
            if before <= end and start <= after:  # during the move: either
                out |= {live, to}
            live, since = to, after
        if since <= end:
            out.add(live)
        return out


@dataclass
class Answers:
    """Every request's user, window, status and body, and the answers per version."""

    records: list[tuple[str, float, float, int, dict[str, Any] | None]] = field(
        default_factory=list
    )
    by_version: Counter[str | None] = field(default_factory=Counter)

    def count(self, version: str) -> int:
        return self.by_version[version]


async def _client(c: httpx.AsyncClient, key: str, users: list[str], seed: int,
                  stop: threading.Event, answers: Answers) -> None:  # fmt: skip
    """Requests for known users at random, each with a new request id, until ``stop``."""
    rng = np.random.default_rng(seed)
    i = 0
    while not stop.is_set():
        user = users[int(rng.integers(len(users)))]
        start = time.monotonic()
        try:
            r = await c.post(
                "/v1/recommend", headers={"X-API-Key": key},
                json={"request_id": f"s{seed}-{i}", "user": user, "k": 10},
            )  # fmt: skip
            status, body = r.status_code, (r.json() if r.status_code == 200 else None)
        except Exception:  # counted as failed, never lost
            status, body = 0, None
        answers.records.append((user, start, time.monotonic(), status, body))
        answers.by_version[body["embedding_version"] if body else None] += 1
        i += 1


def wait_until(condition: Callable[[], bool], deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the load never got there (no answers of the expected version)")
        time.sleep(0.01)


@dataclass
class Driver:
    """The swap and the rollback, run by a thread while the clients send load."""

    swap: EmbeddingSwap
    answers: Answers
    timeline: Timeline
    new_items: tuple[Any, Any, Any]  # ids, content, genre
    per_phase: int
    progress: list[Backfill] = field(default_factory=list)
    shadow: Any = None

    def run(self) -> None:
        s, answers, n = self.swap, self.answers, self.per_phase
        ids, content, genre = self.new_items
        half = len(ids) // 2
        wait_until(lambda: answers.count(s.old) >= n)
        s.begin()
        s.add_items(ids[:half], content[:half], genre[:half])  # dual-written, then backfilled

        def progress(state: Backfill) -> None:
            if not self.progress:  # and more during the backfill
                s.add_items(ids[half:], content[half:], genre[half:])
            self.progress.append(state)

        s.backfill(progress)
        self.shadow = s.shadow()
        if not self.shadow.passed:
            return
        self.timeline.move(s.new, s.promote)
        wait_until(lambda: answers.count(s.new) >= n)
        back = answers.count(s.old)
        self.timeline.move(s.old, s.rollback)
        wait_until(lambda: answers.count(s.old) >= back + n)


def swap_under_load(
    root: Path | None = None,
    *,
    trained: Trained | None = None,
    clients: int = 4,
    per_phase: int = 30,
    new_items: int = 20,
    config: SwapConfig | None = None,
) -> dict[str, Any]:
    """Load through a whole swap and a rollback; the figures (see the module's doc).

    Args:
        root: Where to train and serve (a temporary folder if None).
        trained: Versions trained already by :func:`prepare` (their index is swapped).
        per_phase: Answers to wait for from the old version before the swap, from the
            new one after the promote, and from the old one after the rollback.
    """
    if root is None:
        with tempfile.TemporaryDirectory() as tmp:
            return swap_under_load(Path(tmp), clients=clients, per_phase=per_phase,
                                   new_items=new_items, config=config)  # fmt: skip
    trained = trained or prepare(root)
    scratch = Path(tempfile.mkdtemp(dir=root))
    recs = serve(trained, scratch)
    try:
        return _through_swap(recs, trained, clients, per_phase, new_items, config)
    finally:
        recs.close()


def _through_swap(recs: RecsService, trained: Trained, clients: int, per_phase: int,
                  new_items: int, config: SwapConfig | None) -> dict[str, Any]:  # fmt: skip
    started = time.monotonic()
    users = [str(u) for u in trained.data.user_ids]
    swap = EmbeddingSwap(
        recs.index.store, trained.registry(), 2, held_out=trained.held_out, state=recs.index.state,
        config=config or SwapConfig(k=50, users=300, chunk=200),
    )  # fmt: skip
    releases = new_releases(swap.embeddings[swap.old].catalogue, new_items)
    answers, timeline = Answers(), Timeline(swap.old)
    driver = Driver(swap, answers, timeline, releases, per_phase)
    stop = threading.Event()

    async def main() -> None:
        transport = httpx.ASGITransport(app=recs.service)  # type: ignore[arg-type]  # dict vs MutableMapping scopes
        async with httpx.AsyncClient(transport=transport, base_url="http://recs") as c:
            load = [
                asyncio.create_task(_client(c, trained.key, users, seed, stop, answers))
                for seed in range(clients)
            ]
            try:
                await asyncio.to_thread(driver.run)
            finally:
                stop.set()
                await asyncio.gather(*load)

    asyncio.run(main())
    written = {v: swap.index.store.open(swap.index.collection(v)) for v in (swap.old, swap.new)}
    has_new = {v: int(np.isin(releases[0], w.ids()).sum()) for v, w in written.items()}
    check = MixedCheck(swap.embeddings, config=recs.pipeline.config)
    failed = degraded = mixed = embedded = 0
    for user, start, end, status, body in answers.records:
        if status != 200 or body is None:
            failed += 1
            continue
        embedded += body["sources"].count("embedding")
        if body["embedding_version"] is None:
            degraded += 1
        elif check.mixed(user, body) or (
            body["embedding_version"] not in timeline.live_between(start, end)
        ):
            mixed += 1
    swap.finish()  # the rolled-back candidate dropped
    report = driver.shadow
    return {
        "swap_requests": len(answers.records),
        "swap_failed_requests": failed,
        "swap_mixed_answers": mixed,
        "swap_degraded_answers": degraded,
        "swap_embedding_items_checked": embedded,
        "swap_answers_by_version": {
            str(k): v for k, v in sorted(answers.by_version.items(), key=str)
        },
        "swap_backfill_progress": [(p.done, p.total) for p in driver.progress],
        "swap_new_items_in": has_new,
        "swap_shadow_passed": bool(report and report.passed),
        "swap_shadow_overlap": round(report.overlap_at_k, 3) if report else None,
        "swap_shadow_recall": (round(report.quality_old, 4), round(report.quality_new, 4))
        if report
        else None,
        "swap_seconds": round(time.monotonic() - started, 1),
    }
