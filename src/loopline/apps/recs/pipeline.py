"""The recommendation request path: retrieval, ranking, re-ranking, exploration.

- **Retrieval**: one read of the vector index's alias per request (a snapshot) names its
  version (``v3``) and its collection; the query is encoded with that registry version's
  retrieval state, never another's, that collection alone is searched, the co-occurrence
  and popularity retrievers of the same version join it, and the answer's
  ``embedding_version`` names it. So an embedding swap (:mod:`loopline.apps.recs.swap`)
  never mixes two versions in an answer. Items the index holds beyond that version's
  catalogue (added since it was trained) are left out. The index down: co-occurrence
  and popularity alone (``degraded: ["vector_index"]``).
- **Ranking**: the routed model (the ONNX LambdaRank ranker of a registry bundle); if it
  fails, retrieval order (``degraded: ["ranker"]``).
- **Re-ranking**: the user's items and the request's ``exclude`` and blocked items
  left out, maximal marginal relevance over genres, at most ``max_per_genre`` per first
  genre.
- **Exploration**: Thompson sampling fills the explore slots from candidates the page
  left out and items without interactions; it learns from impressions (each answer
  once it is durable) and clicks (:class:`FeedbackPipeline`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgspec
import numpy as np
import numpy.typing as npt

from loopline.apps.recs.api import (
    FeedbackRequest,
    FeedbackResponse,
    RecommendRequest,
    RecommendResponse,
    Source,
)
from loopline.apps.recs.data import AGE_BANDS
from loopline.apps.recs.events import Click, Impression
from loopline.apps.recs.features import UserFeatures
from loopline.apps.recs.model import Recommender, RecsConfig
from loopline.apps.recs.ranking import INPUTS, User
from loopline.apps.recs.rerank import Genres, RerankConfig, Thompson, page
from loopline.apps.recs.retrieval import SOURCES, Candidates, Retrieval, best
from loopline.apps.recs.train import Catalogue, load_version, version_number
from loopline.models import ServingModel
from loopline.predictions import Column
from loopline.registry import Pinned
from loopline.serving import Prediction, Routing
from loopline.vectors import VersionedIndex

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
COLUMNS = (
    Column("k", "INTEGER"),
    Column("surface", "TEXT"),
    Column("embedding_version", "TEXT"),
)
DEFAULT_AGE, DEFAULT_GENDER = 30, 1  # a new user who says nothing: the median MovieLens user


@dataclass(frozen=True, slots=True)
class Version:
    """One registry version's retrieval state and catalogue, indexed for serving."""

    number: int
    retrieval: Retrieval
    catalogue: Catalogue
    item_index: dict[str, int]
    user_index: dict[str, int]
    genres: Genres  # for re-ranking
    new_items: I64  # items without interactions in training

    @classmethod
    def of(cls, number: int, retrieval: Retrieval, catalogue: Catalogue) -> Version:
        return cls(
            number=number, retrieval=retrieval, catalogue=catalogue,
            item_index={v: i for i, v in enumerate(catalogue.item_ids)},
            user_index={v: i for i, v in enumerate(catalogue.user_ids)},
            genres=Genres.of(catalogue.items.genres),
            new_items=np.flatnonzero(retrieval.popularity <= 0).astype(np.int64),
        )  # fmt: skip

    def items(self, ids: Sequence[str]) -> I64:
        """The indices of the ids this version knows, in order (unknown ones dropped)."""
        found = (self.item_index.get(i) for i in ids)
        return np.asarray([i for i in found if i is not None], dtype=np.int64)


class Versions:
    """Each registry version's :class:`Version`, loaded on first use (every file
    checked) and kept for the ``keep`` most recently used."""

    def __init__(self, resolve: Callable[[int], Pinned], *, keep: int = 3) -> None:
        self.resolve, self.keep = resolve, keep
        self._cache: OrderedDict[int, Version] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, number: int, pinned: Pinned | None = None) -> Version:
        with self._lock:
            found = self._cache.get(number)
            if found is not None:
                self._cache.move_to_end(number)
                return found
        retrieval, catalogue = load_version(pinned or self.resolve(number))
        made = Version.of(number, retrieval, catalogue)
        with self._lock:
            self._cache[number] = made
            while len(self._cache) > self.keep:
                self._cache.popitem(last=False)
        return made

    def of_model(self, model: ServingModel) -> Version:
        return self.get(model.version, model.pinned)


@dataclass(frozen=True, slots=True)
class Placed:
    """An answer's items (indices) and where each came from."""

    items: list[int]
    sources: list[Source]


class RecsPipeline:
    """``POST /v1/recommend``: a page of ``k`` items per request."""

    def __init__(
        self,
        *,
        versions: Versions,
        index: VersionedIndex | None,
        users: UserFeatures,
        explore: Thompson,
        publish: Callable[[Sequence[Impression]], None],
        rerank: RerankConfig | None = None,
        config: RecsConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.versions, self.index, self.users, self.explore = versions, index, users, explore
        self.publish, self.clock = publish, clock
        self.rerank = rerank or RerankConfig()
        self.config = config or RecsConfig()

    def request_id(self, request: RecommendRequest) -> str:
        return request.request_id

    def fingerprint(self, request: RecommendRequest) -> Any:
        return msgspec.to_builtins(request)

    def predict_many(
        self, requests: Sequence[RecommendRequest], trace_ids: Sequence[str], routing: Routing
    ) -> list[Prediction[RecommendResponse]]:
        return [self.predict_one(r, routing) for r in requests]

    def predict_one(self, r: RecommendRequest, routing: Routing) -> Prediction[RecommendResponse]:
        started = time.perf_counter()
        model, arm = routing.pick(r.user)
        version, search, embedding_version = self._retrieval(model)
        user = self._user(r, version)
        recommender = Recommender(
            retrieval=version.retrieval, items=version.catalogue.items,
            ranker=_ranker(model), config=self.config,
        )  # fmt: skip
        c, degraded = recommender.candidates(user, search)
        scores, more = recommender.rank(c, user)
        degraded += more
        blocked = np.concatenate(
            [user.history, version.items(r.exclude), np.fromiter(self.rerank.blocked, np.int64)]
        )
        placed = self._page(c, scores, version, r.k, blocked)
        ids = [version.catalogue.item_ids[i] for i in placed.items]
        surface = r.context.surface if r.context else "home"
        response = RecommendResponse(
            request_id=r.request_id, items=ids, sources=placed.sources,
            model_version=model.label, embedding_version=embedding_version, degraded=degraded,
        )  # fmt: skip
        impression = Impression(
            request_id=r.request_id, user=r.user, items=ids, sources=list(placed.sources),
            model_version=model.label, embedding_version=embedding_version,
            event_time_ms=int(self.clock() * 1000),
        )  # fmt: skip
        return Prediction(
            response=response, request_id=r.request_id, routing_key=r.user,
            model_version=model.label, arm=arm,
            inputs={"user": r.user, "known_user": user.index is not None,
                    "history": len(user.history), "session": len(user.session),
                    "segment": user.segment, "candidates": len(c.items)},
            outputs={"items": ids, "sources": list(placed.sources)},
            outcome="recommended", degraded=degraded,
            timings_ms={"total": (time.perf_counter() - started) * 1000},
            columns={"k": r.k, "surface": surface, "embedding_version": embedding_version},
            state=(impression, placed.items),
        )  # fmt: skip

    def _retrieval(
        self, model: ServingModel
    ) -> tuple[Version, Callable[[F32, int], tuple[I64, F32]] | None, str | None]:
        """The version whose query encoder matches the index's live collection, its
        search, and the index's version; the model's own version and a failing search
        when the index is down."""
        if self.index is None:  # no index configured: exact search over the factors
            return self.versions.of_model(model), None, None
        try:
            snapshot = self.index.snapshot()
            version = self.versions.get(version_number(snapshot.version))
        except Exception as exc:  # the index is down: the candidates say vector_index
            error = exc

            def down(query: F32, n: int) -> tuple[I64, F32]:
                raise error

            return self.versions.of_model(model), down, None

        known = len(version.catalogue.item_ids)

        def search(query: F32, n: int) -> tuple[I64, F32]:
            if not query.any():  # a user with no items yet: no taste to search with
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            found = snapshot.search(query[None, :], n)
            # items added to the index after this version was trained are not in its
            # catalogue (no features, no ids to answer with): left out until a version has them
            keep = (found.ids[0] >= 0) & (found.ids[0] < known)
            return found.ids[0][keep], found.scores[0][keep]

        return version, search, snapshot.version

    def _user(self, r: RecommendRequest, v: Version) -> User:
        index = v.user_index.get(r.user)
        cat = v.catalogue
        trained = (
            cat.history.indices[cat.history.indptr[index] : cat.history.indptr[index + 1]]
            if index is not None
            else np.zeros(0, np.int64)
        ).astype(np.int64)
        session = v.items(r.session)
        read = self.users.read_one(r.user, int(self.clock() * 1000))  # the feature engine's
        recent = v.items(read.session)
        recent = recent[~np.isin(recent, trained)]
        fresh = np.concatenate([session, recent[~np.isin(recent, session)]])
        ctx = r.context
        if index is not None:
            segment, age, gender = (
                int(cat.segment[index]),
                int(cat.age[index]),
                int(cat.gender[index]),
            )
        elif ctx is not None and ctx.age is not None and ctx.gender is not None:
            age, gender = ctx.age, int(ctx.gender == "M")
            segment = _segment(age, gender)
        else:
            segment, age, gender = cat.default_segment, DEFAULT_AGE, DEFAULT_GENDER
        seen = np.concatenate([trained, fresh, v.items(read.recent)])
        return User(
            index=index, history=np.unique(seen), session=fresh, age=age, gender=gender,
            segment=segment, genre_counts=read.genre_counts,
        )  # fmt: skip

    def _page(self, c: Candidates, scores: F32, v: Version, k: int, blocked: I64) -> Placed:
        """The re-ranked page (:func:`~loopline.apps.recs.rerank.page`), each item's
        source, and popularity where too few candidates were left."""
        shown = page(
            c.items, scores, k, genres=v.genres, config=self.rerank, bandit=self.explore,
            fresh=v.new_items.tolist(), blocked=blocked,
        )  # fmt: skip
        best_source = dict(zip(c.items.tolist(), np.argmin(c.ranks, axis=1).tolist(), strict=True))
        items: list[int] = shown.items.tolist()
        sources: list[Source] = [
            "explore" if explored else cast(Source, SOURCES[best_source[item]])
            for item, explored in zip(items, shown.explored.tolist(), strict=True)
        ]
        if len(items) < k:
            taken = np.concatenate([blocked, shown.items])
            for item in best(v.retrieval.popularity, k - len(items), taken).tolist():
                items.append(int(item))
                sources.append("popularity")
        return Placed(items, sources)

    def committed(self, prediction: Prediction[RecommendResponse]) -> None:
        """The answer is durable: its impression goes to the event log, and each shown
        item's impression to the explorer."""
        impression, items = prediction.state
        self.publish([impression])
        for item in items:
            self.explore.update(item, impressions=1, clicks=0)

    def close(self) -> None:
        pass


class FeedbackPipeline:
    """``POST /v1/feedback``: a click on a shown item. It goes to the clicks topic
    (whence the label feed writes it beside the answer in the prediction log) once the
    click is durable (and, as an interaction, to the users' features), and at once to
    the explorer."""

    def __init__(
        self,
        *,
        versions: Versions,
        explore: Thompson,
        publish: Callable[[Sequence[Click]], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.versions, self.explore = versions, explore
        self.publish, self.clock = publish, clock

    def request_id(self, request: FeedbackRequest) -> str:
        return f"{request.request_id}:click:{request.item}"[:128]

    def fingerprint(self, request: FeedbackRequest) -> Any:
        return msgspec.to_builtins(request)

    def predict_many(
        self, requests: Sequence[FeedbackRequest], trace_ids: Sequence[str], routing: Routing
    ) -> list[Prediction[FeedbackResponse]]:
        version = self.versions.of_model(routing.champion)
        out = []
        for r in requests:
            item = version.item_index.get(r.item)
            if item is not None:
                self.explore.update(item, impressions=0, clicks=1)
            click = Click(
                request_id=r.request_id, user=r.user, item=r.item, position=r.position,
                event_time_ms=r.event_time_ms or int(self.clock() * 1000),
            )  # fmt: skip
            out.append(
                Prediction(
                    response=FeedbackResponse(request_id=r.request_id, item=r.item, logged=True),
                    request_id=self.request_id(r),
                    routing_key=r.user,
                    model_version=routing.champion.label,
                    arm="champion",
                    inputs={"request_id": r.request_id, "item": r.item, "position": r.position},
                    outputs={"clicked": r.item},
                    outcome="click",
                    state=click,
                )
            )
        return out

    def committed(self, prediction: Prediction[FeedbackResponse]) -> None:
        self.publish([prediction.state])

    def close(self) -> None:
        pass


def _ranker(model: ServingModel) -> Callable[[F64], F32]:
    """The routed model as the recommender's ranker (its inputs in its own order)."""
    columns = [INPUTS.index(n) for n in model.signature.inputs]

    def rank(x: F64) -> F32:
        scores, _ = model.predict(np.ascontiguousarray(x[:, columns]))
        return np.asarray(scores, dtype=np.float32).reshape(len(x))

    return rank


def _segment(age: int, gender: int) -> int:
    return int(np.searchsorted(np.asarray(AGE_BANDS), age, side="right")) * 2 + gender
