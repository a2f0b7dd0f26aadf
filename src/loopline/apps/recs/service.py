"""``loopline serve recs``: the recommendation service, wired from the platform's parts.

It loads the registry's ``recs`` champion (pinned, every file checked), searches the
``items`` alias of a vector store (a folder, or ``milvus://host:port``), keeps the
users' recent items from ``recs.interactions``, writes every answer to the prediction
log (clicks beside them as labels, from ``recs.clicks``), publishes impressions to
``recs.impressions``, and follows the registry's champion alias.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from loopline.apps.recs.api import (
    FeedbackRequest,
    FeedbackResponse,
    RecommendRequest,
    RecommendResponse,
    check,
)
from loopline.apps.recs.events import CLICKS, IMPRESSIONS, INTERACTIONS, ClickLabels
from loopline.apps.recs.features import InteractionFeed, UserState
from loopline.apps.recs.pipeline import COLUMNS, FeedbackPipeline, RecsPipeline, Versions
from loopline.apps.recs.rerank import RerankConfig, Thompson
from loopline.apps.recs.train import ALIAS, ATTRS, MODEL
from loopline.events import DeadLetterQueue, EventLog, Message, open_log
from loopline.exceptions import TopicNotFoundError
from loopline.feedback import LabelFeed
from loopline.models import ServingModel, load
from loopline.predictions import Log, open_prediction_log
from loopline.registry import Registry
from loopline.serving import Deployment, Endpoint, KeyRing, Limits, Outbox, Routing, Service, every
from loopline.vectors import VersionedIndex, open_vectors

TITLE = "loopline recommendations"
FEEDS_EVERY_S = 1.0


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    state: Path = Path(".loopline/recs")
    registry: str | None = None
    model: str = MODEL
    keys: Path | None = None
    events: str | None = None  # event log URL (default: file:// under state)
    vectors: str | None = None  # a folder or milvus://host:port (default: state/vectors)
    decisions: str | None = None  # postgresql://... prediction log (default: SQLite)
    watch_s: float = 5.0  # how often the registry's champion alias is checked (0: never)
    limits: Limits = field(default_factory=Limits)
    rerank: RerankConfig = field(default_factory=RerankConfig)


def vectors_of(state: Path, vectors: str | None) -> tuple[str, Path | None]:
    """The vector store's location and the swap's state file (an embedded store keeps
    it in its folder; a server's is kept under ``state``)."""
    where = vectors or str(state / "vectors")
    remote = where.startswith(("milvus://", "http://", "https://"))
    return where, (state / f"{ALIAS}.versions.json") if remote else None


@dataclass(frozen=True)
class RecsService:
    """The service and the parts it was built from."""

    service: Service
    pipeline: RecsPipeline
    feedback: FeedbackPipeline
    deployment: Deployment
    log: Log
    events: EventLog
    labels: LabelFeed
    interactions: InteractionFeed
    index: VersionedIndex
    registry: Registry
    outboxes: tuple[Outbox[bytes], ...]

    def close(self) -> None:
        for outbox in self.outboxes:
            outbox.close()
        self.log.close()
        self.events.close()


def build(options: ServeOptions) -> RecsService:
    """Everything the service needs, loaded (ready when this returns)."""
    state = options.state
    state.mkdir(parents=True, exist_ok=True)
    registry = (
        Registry(options.registry, root=state / "registry") if options.registry else Registry()
    )

    def load_model(ref: str | int) -> ServingModel:
        return load(registry.resolve(options.model, ref))

    versions = Versions(lambda n: registry.resolve(options.model, n))
    champion = load_model("champion")
    served = versions.of_model(champion)
    where, swap_state = vectors_of(state, options.vectors)
    index = VersionedIndex(
        open_vectors(where), alias=ALIAS, encoders={}, attrs=ATTRS, state=swap_state
    )
    events = open_log(options.events or f"file://{(state / 'events.db').resolve()}")
    impressions = _outbox(events, IMPRESSIONS, "impressions")
    clicks = _outbox(events, CLICKS, "clicks")
    users = UserState(genres=served.catalogue.items.genres.shape[1])
    explore = Thompson()
    pipeline = RecsPipeline(
        versions=versions, index=index, users=users, explore=explore, rerank=options.rerank,
        publish=lambda xs: impressions.put_many([msgspec.json.encode(x) for x in xs]),
    )  # fmt: skip
    feedback = FeedbackPipeline(
        versions=versions, users=users, explore=explore,
        publish=lambda xs: clicks.put_many([msgspec.json.encode(x) for x in xs]),
    )  # fmt: skip
    log = open_prediction_log(options.decisions or state / "recommendations.db", columns=COLUMNS)
    labels = LabelFeed(
        events, log, topic=CLICKS, decode=ClickLabels(DeadLetterQueue(events, CLICKS)), keep="max"
    )
    interactions = InteractionFeed(
        events, users, served.item_index, served.catalogue.items.genres, topic=INTERACTIONS
    )
    deployment = Deployment(Routing(champion=champion), load=load_model)
    tasks = [
        lambda: every(FEEDS_EVERY_S, labels.run_once),
        lambda: every(FEEDS_EVERY_S, interactions.run_once),
    ]
    if options.watch_s > 0:
        version_of = lambda: registry.get(options.model, "champion").version  # noqa: E731
        tasks.append(lambda: deployment.follow(version_of, options.watch_s))
    service = Service(
        endpoints=endpoints(pipeline, feedback),
        deployment=deployment,
        log=log,
        keys=KeyRing.load(options.keys or state / "keys.json"),
        title=TITLE,
        limits=options.limits,
        tasks=tasks,
    )
    return RecsService(
        service, pipeline, feedback, deployment, log, events, labels, interactions, index,
        registry, (impressions, clicks),
    )  # fmt: skip


def endpoints(pipeline: RecsPipeline | None, feedback: FeedbackPipeline | None) -> list[Endpoint]:
    """``POST /v1/recommend`` and ``POST /v1/feedback``."""
    return [
        Endpoint(
            path="/v1/recommend", request=RecommendRequest, response=RecommendResponse,
            pipeline=pipeline, check=check, summary="A page of recommended items",
        ),
        Endpoint(
            path="/v1/feedback", request=FeedbackRequest, response=FeedbackResponse,
            pipeline=feedback, summary="A click on a recommended item",
        ),
    ]  # fmt: skip


def _outbox(log: EventLog, topic: str, name: str) -> Outbox[bytes]:
    """Messages to ``topic`` (created with one partition when missing), published by a
    thread of their own (a slow broker never holds the event loop)."""
    try:
        log.partitions(topic)
    except TopicNotFoundError:
        log.create_topic(topic, partitions=1)

    def publish(values: Sequence[bytes]) -> None:
        log.append_many(topic, [Message(v) for v in values])

    return Outbox(publish, name=name)


def serve(options: ServeOptions, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service (one process, one event loop) until interrupted."""
    import uvicorn

    from loopline.monitoring import json_logging

    json_logging()
    built = build(options)
    uvicorn.run(
        built.service, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
