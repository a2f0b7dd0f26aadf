"""A small ranking application, defined only to test the platform without fraud: users
ask for the top ``k`` of their candidate items; a LambdaRank model scores
(user, item) pairs; labels are graded relevance per item; the metric is NDCG@k.

The world is a simulator (stated as one): each user has a preference vector, each item
a feature vector, and an item's relevance to a user (0-3) grows with their dot product,
plus noise. Version 1 of the model sees only two item features (a weak model); version
2 sees everything (a strong one), so a gate comparing them has a right answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec
import numpy as np
from msgspec import Meta

from loopline.events import Message, Record
from loopline.models import ServingModel, load
from loopline.predictions import Column, Label, Log, open_prediction_log
from loopline.registry import Registry
from loopline.serving import (
    Deployment,
    Endpoint,
    KeyRing,
    Limits,
    Prediction,
    Routing,
    Service,
    new_key,
    predict_ordered,
    refuse,
)
from loopline.tasks import Ranking
from loopline.training import BoostingConfig, bundle, train

MODEL = "toy"
USERS, ITEMS, DIMS = 60, 40, 3
TASK = Ranking(k=5)
COLUMNS = (Column("k", "INTEGER"),)
INPUTS = ("price", "popularity", "f0", "f1", "f2", "u0", "u1", "u2", "match")
WEAK = ("price", "popularity")
Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
SCORE_KEY, SCORE = new_key("caller", ["score"])
ADMIN_KEY, ADMIN = new_key("ops", ["score", "admin"])


class RankRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    request_id: Id
    user: Id
    candidates: Annotated[list[Id], Meta(min_length=1, max_length=50)]
    k: Annotated[int, Meta(ge=1, le=20)] = 5


class RankResponse(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    items: list[str]
    model_version: str
    degraded: list[str] = []
    replayed: bool = False


class Chunk(msgspec.Struct, frozen=True):
    item: str
    rank: int


class Upload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    request_id: Id
    blob: str


class Stored(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    size: int


@dataclass(frozen=True)
class World:
    """The simulator: users' preferences, items' features, true relevance."""

    users: np.ndarray  # (USERS, DIMS)
    items: np.ndarray  # (ITEMS, DIMS + 2): price, popularity, then the DIMS features

    @classmethod
    def make(cls, seed: int = 0) -> World:
        rng = np.random.default_rng(seed)
        return cls(rng.normal(size=(USERS, DIMS)), rng.normal(size=(ITEMS, DIMS + 2)))

    def features(self, user: str, items: Sequence[str]) -> dict[str, np.ndarray]:
        u = self.users[int(user.split("-")[1])]
        idx = [int(i.split("-")[1]) for i in items]
        it = self.items[idx]
        cols = {"price": it[:, 0], "popularity": it[:, 1]}
        cols |= {f"f{d}": it[:, 2 + d] for d in range(DIMS)}
        cols |= {f"u{d}": np.full(len(idx), u[d]) for d in range(DIMS)}
        cols["match"] = it[:, 2:] @ u
        return cols

    def relevance(self, user: str, items: Sequence[str], rng: np.random.Generator) -> np.ndarray:
        match = self.features(user, items)["match"]
        return np.clip(np.round(1.5 + match + rng.normal(0, 0.5, len(match))), 0, 3)

    def request(self, i: int, rng: np.random.Generator, candidates: int = 20) -> dict[str, Any]:
        picked = rng.choice(ITEMS, candidates, replace=False)
        return {
            "request_id": f"r-{i}",
            "user": f"user-{rng.integers(USERS)}",
            "candidates": [f"item-{j}" for j in picked],
        }


def train_version(
    world: World, registry: Registry, *, strong: bool, seed: int = 0, alias: str = "challenger"
) -> int:
    """Train a LambdaRank model on judged requests, register it under ``alias``."""
    rng = np.random.default_rng(seed)
    inputs = INPUTS if strong else WEAK
    rows, labels = [], []
    for i in range(200):
        req = world.request(i, rng)
        f = world.features(req["user"], req["candidates"])
        rows.append(np.column_stack([f[n] for n in inputs]))
        labels.append(world.relevance(req["user"], req["candidates"], rng))
    x, y = np.vstack(rows), np.concatenate(labels)
    config = BoostingConfig(objective="lambdarank", num_boost_round=30, num_leaves=7,
                            min_child_samples=10, threads=1, seed=seed)  # fmt: skip
    booster = train(config, x, y, list(inputs), group=[20] * 200)
    packed, _ = bundle(booster, x[:200])
    version = registry.register(MODEL, bundle=packed, metrics={"ndcg_at_5": 0.0}, params={},
                                tags={"strong": str(strong)})  # fmt: skip
    registry.promote(MODEL, version.version, alias)
    return version.version


class RankPipeline:
    """Scores every candidate of a request with the routed model and answers its top k;
    a shadowed challenger's top k is logged beside it."""

    def __init__(self, world: World) -> None:
        self.world = world

    def request_id(self, request: RankRequest) -> str:
        return request.request_id

    def fingerprint(self, request: RankRequest) -> Any:
        return msgspec.to_builtins(request)

    def predict_many(
        self, requests: Sequence[RankRequest], trace_ids: Sequence[str], routing: Routing
    ) -> list[Prediction[RankResponse]]:
        return [self.predict_one(r, routing) for r in requests]

    def predict_one(self, r: RankRequest, routing: Routing) -> Prediction[RankResponse]:
        features = self.world.features(r.user, r.candidates)
        model, arm = routing.pick(r.user)
        degraded: list[str] = []
        scores, label = predict_ordered(model, routing.previous, _x(model, features), degraded)
        top = _top(r.candidates, scores, r.k)
        shadow_model = shadow = None
        challenger = routing.challenger
        if routing.shadow and challenger is not None and arm == "champion":
            shadow_model = challenger.label
            try:
                shadow = {
                    "items": _top(
                        r.candidates, challenger.predict(_x(challenger, features))[0], r.k
                    )
                }
            except Exception:  # a failing shadow is logged as unscored
                shadow = None
        return Prediction(
            response=RankResponse(request_id=r.request_id, items=top, model_version=label,
                                  degraded=degraded),
            request_id=r.request_id, routing_key=r.user, model_version=label, arm=arm,
            inputs={"user": r.user, "candidates": len(r.candidates)}, outputs={"items": top},
            outcome="ranked", degraded=degraded, shadow_model=shadow_model,
            shadow_outputs=shadow, columns={"k": r.k},
        )  # fmt: skip

    def committed(self, prediction: Prediction[RankResponse]) -> None:
        pass

    def close(self) -> None:
        pass

    async def stream(
        self, request: RankRequest, trace_id: str, routing: Routing,
        emit: Callable[[Any], Awaitable[None]],
    ) -> Prediction[RankResponse]:  # fmt: skip
        """The ranking, one item at a time (a slow producer: 20 ms between items)."""
        answer = self.predict_one(request, routing)
        for rank, item in enumerate(answer.response.items):
            await emit(Chunk(item, rank))
            await asyncio.sleep(0.02)
        return answer


class AsyncRankPipeline(RankPipeline):
    """The same pipeline with a model call that awaits (a remote model, say)."""

    calls_in_flight = 0
    most_in_flight = 0

    async def predict_many(  # type: ignore[override]
        self, requests: Sequence[RankRequest], trace_ids: Sequence[str], routing: Routing
    ) -> list[Prediction[RankResponse]]:
        AsyncRankPipeline.calls_in_flight += 1
        AsyncRankPipeline.most_in_flight = max(self.most_in_flight, self.calls_in_flight)
        try:
            await asyncio.sleep(0.01)
            return super().predict_many(requests, trace_ids, routing)
        finally:
            AsyncRankPipeline.calls_in_flight -= 1


class UploadPipeline:
    """A route that takes a large body (an image, say) and answers its size."""

    def request_id(self, request: Upload) -> str:
        return request.request_id

    def fingerprint(self, request: Upload) -> Any:
        return {"request_id": request.request_id, "size": len(request.blob)}

    def predict_many(
        self, requests: Sequence[Upload], trace_ids: Sequence[str], routing: Routing
    ) -> list[Prediction[Stored]]:
        return [
            Prediction(
                response=Stored(request_id=r.request_id, size=len(r.blob)),
                request_id=r.request_id,
                routing_key=r.request_id,
                model_version=routing.champion.label,
                arm="champion",
                inputs={"size": len(r.blob)},
                outputs={"size": len(r.blob)},
                outcome="stored",
            )
            for r in requests
        ]

    def committed(self, prediction: Prediction[Stored]) -> None:
        pass

    def close(self) -> None:
        pass


def _x(model: ServingModel, features: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([features[n] for n in model.signature.inputs])


def _top(candidates: Sequence[str], scores: np.ndarray, k: int) -> list[str]:
    order = np.argsort(-np.asarray(scores), kind="stable")[:k]
    return [candidates[i] for i in order]


def check(request: RankRequest) -> None:
    if len(set(request.candidates)) != len(request.candidates):
        raise refuse(422, "Candidates repeat an item.", field="candidates")


@dataclass
class Toy:
    """A toy service and its parts."""

    service: Service
    deployment: Deployment
    log: Log
    pipeline: RankPipeline
    registry: Registry
    world: World
    now: list[float]  # the service's clock, seconds (settable)

    def close(self) -> None:
        self.log.close()


def build(
    root: Path,
    registry: Registry,
    world: World,
    *,
    log_url: str | None = None,
    limits: Limits | None = None,
    asynchronous: bool = False,
) -> Toy:
    """The toy service on ``registry``'s champion, its log in ``root`` (or at ``log_url``)."""
    keys = root / "keys.json"
    KeyRing([SCORE, ADMIN]).save(keys)

    def load_model(ref: str | int) -> ServingModel:
        return load(registry.resolve(MODEL, ref))

    pipeline = (AsyncRankPipeline if asynchronous else RankPipeline)(world)
    log = open_prediction_log(log_url or root / "predictions.db", columns=COLUMNS)
    deployment = Deployment(Routing(champion=load_model("champion")), load=load_model)
    now = [1_750_000_000.0]
    endpoints = [
        Endpoint(path="/v1/rank", request=RankRequest, response=RankResponse,
                 pipeline=pipeline, check=check, summary="The top k candidates"),
        Endpoint(path="/v1/rank/stream", request=RankRequest, response=Chunk,
                 pipeline=pipeline, stream=True, check=check),
        Endpoint(path="/v1/upload", request=Upload, response=Stored, pipeline=UploadPipeline(),
                 max_body_bytes=4 << 20),
    ]  # fmt: skip
    service = Service(
        endpoints=endpoints, deployment=deployment, log=log,
        keys=KeyRing.load(keys), title="toy ranking", limits=limits, clock=lambda: now[0],
    )  # fmt: skip
    return Toy(service, deployment, log, pipeline, registry, world, now)


def click_messages(world: World, joined_requests: Sequence[dict[str, Any]], at_ms: int,
                   seed: int = 1) -> list[Message]:  # fmt: skip
    """The judged relevance of every candidate of each request, as label events."""
    rng = np.random.default_rng(seed)
    out = []
    for req in joined_requests:
        rel = world.relevance(req["user"], req["candidates"], rng)
        for item, value in zip(req["candidates"], rel, strict=True):
            body = {"request_id": req["request_id"], "item": item, "relevance": float(value),
                    "at_ms": at_ms}  # fmt: skip
            out.append(Message(msgspec.json.encode(body), key=req["request_id"].encode()))
    return out


def decode_clicks(records: Sequence[Record]) -> list[Label]:
    out = []
    for r in records:
        d = msgspec.json.decode(r.value)
        out.append(Label(d["request_id"], d["relevance"], d["at_ms"], subject=d["item"]))
    return out
