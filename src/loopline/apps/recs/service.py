"""``loopline serve recs``: the recommendation service, wired from the platform's parts.

It loads the registry's ``recs`` champion (pinned, every file checked), searches the
``items`` alias of a vector store (a folder, or ``milvus://host:port``), keeps the users'
features (:mod:`loopline.apps.recs.features`) in an embedded online store fed by a
feature worker from ``recs.interactions``, writes every answer to the prediction log
(clicks beside them as labels, from ``recs.clicks``), publishes impressions to
``recs.impressions`` and each click to ``recs.clicks`` and, as an interaction, to
``recs.interactions``, and follows the registry's champion alias.

The online store holds, per user active within twice the longest window (720 days),
12 tiles of 19 genre sums and a list of 20 items: memory follows the users active in
that horizon (idle ones give their slots back at each snapshot, every 5 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
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
from loopline.apps.recs.events import (
    CLICKS,
    GENRES,
    IMPRESSIONS,
    INTERACTIONS,
    Click,
    ClickLabels,
    Interaction,
)
from loopline.apps.recs.features import UserFeatures, interaction_columns, user_view
from loopline.apps.recs.pipeline import COLUMNS, FeedbackPipeline, RecsPipeline, Versions
from loopline.apps.recs.rerank import RerankConfig, Thompson
from loopline.apps.recs.train import ALIAS, ATTRS, MODEL
from loopline.events import DeadLetterQueue, EventLog, open_log
from loopline.features import EmbeddedStore, FeatureWorker, OnlineEngine
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
    features: Path | None = None  # the online feature store's file (default: state/features.db)
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
    interactions: FeatureWorker  # recs.interactions into the users' online features
    index: VersionedIndex
    registry: Registry
    outboxes: tuple[Outbox[bytes], ...]

    def close(self) -> None:
        for outbox in self.outboxes:
            outbox.close()
        self.log.close()
        self.events.close()
        self.interactions.engine.store.close()  # a last snapshot


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
    versions.of_model(champion)  # loaded now, not at the first request
    where, swap_state = vectors_of(state, options.vectors)
    index = VersionedIndex(
        open_vectors(where), alias=ALIAS, encoders={}, attrs=ATTRS, state=swap_state
    )
    events = open_log(options.events or f"file://{(state / 'events.db').resolve()}")
    impressions = Outbox.to_topic(events, IMPRESSIONS, name="impressions")
    clicks = Outbox.to_topic(events, CLICKS, name="clicks")
    clicked = Outbox.to_topic(events, INTERACTIONS, name="interactions")  # clicks as interactions
    engine = OnlineEngine(
        views=[user_view()], store=EmbeddedStore(options.features or state / "features.db")
    )
    interactions = FeatureWorker(
        engine=engine, log=events, topic=INTERACTIONS, schema=Interaction,
        derive=interaction_columns,
    )  # fmt: skip
    _catch_up(interactions)  # the features as the log has them, before the first request
    users = UserFeatures(engine)
    explore = Thompson()
    pipeline = RecsPipeline(
        versions=versions, index=index, users=users, explore=explore, rerank=options.rerank,
        publish=lambda xs: impressions.put_many([msgspec.json.encode(x) for x in xs]),
    )  # fmt: skip
    deployment = Deployment(Routing(champion=champion), load=load_model)
    interaction_of = _interaction(versions, deployment)

    def publish_clicks(xs: Sequence[Click]) -> None:
        clicks.put_many([msgspec.json.encode(x) for x in xs])
        clicked.put_many([msgspec.json.encode(i) for x in xs if (i := interaction_of(x))])

    feedback = FeedbackPipeline(versions=versions, explore=explore, publish=publish_clicks)
    log = open_prediction_log(options.decisions or state / "recommendations.db", columns=COLUMNS)
    labels = LabelFeed(
        events, log, topic=CLICKS, decode=ClickLabels(DeadLetterQueue(events, CLICKS)), keep="max"
    )
    remote = getattr(log, "remote", False)

    async def feeds() -> None:
        """Interactions into the features (the engine is the loop's), then clicks into
        the log's labels, on a worker thread where the log is remote (its transaction
        can wait on another process's lock); one after the other: one topic reader."""
        _catch_up(interactions)
        if remote:
            await asyncio.to_thread(labels.run_once)
        else:
            labels.run_once()

    tasks = [lambda: every(FEEDS_EVERY_S, feeds)]
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
        registry, (impressions, clicks, clicked),
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


def _catch_up(worker: FeatureWorker) -> None:
    """Apply every record that has arrived (micro-batches, each committed with its offsets;
    records that do not decode, and late events, go to the dead-letter topic)."""
    while worker.run_once():
        pass


def _interaction(
    versions: Versions, deployment: Deployment
) -> Callable[[Click], Interaction | None]:
    """A click as an interaction, with its item's genres in the champion's catalogue
    (None for an item the champion does not know: the click still reaches the labels)."""

    def of(click: Click) -> Interaction | None:
        version = versions.of_model(deployment.routing.champion)
        item = version.item_index.get(click.item)
        if item is None or not click.item.isdigit():
            return None
        genres = tuple(float(g) for g in version.catalogue.items.genres[item])
        return Interaction(
            user=click.user, item=click.item, event_time_ms=click.event_time_ms, clicked=True,
            genres=genres if len(genres) == GENRES else None,
        )  # fmt: skip

    return of


def serve(options: ServeOptions, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service (one process, one event loop) until interrupted."""
    import uvicorn

    from loopline.monitoring import json_logging

    json_logging()
    built = build(options)
    uvicorn.run(
        built.service, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
