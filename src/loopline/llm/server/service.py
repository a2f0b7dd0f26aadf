"""``loopline serve llm``: an OpenAI-compatible server of a language model on the
serving kernel.

Routes: ``POST /v1/completions`` and ``POST /v1/chat/completions`` (streamed as
Server-Sent Events when ``stream`` is true), ``GET /v1/models``, ``POST /v1/feedback``,
and the kernel's own (``/livez``, ``/readyz``, ``/metrics``, ``/admin/...``). Keys come
as ``Authorization: Bearer`` (OpenAI's clients) or ``X-API-Key``; each key has a
token budget a minute.

Every completion is logged, prompt and text, in the prediction log; feedback goes to
the ``llm.feedback`` topic and from there beside the completion it names. The
deployment routes the base model and, with ``adapter``, the versions of a LoRA adapter
over it: ``/admin/routing`` sends a share of users to an adapter (an A/B test),
``/admin/model/promote`` makes it the champion, and the registry's champion alias is
followed (blue-green, streams in flight finish on the model that began them).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from loopline.events import DeadLetterQueue, EventLog, open_log
from loopline.feedback import LabelFeed
from loopline.llm.server import api
from loopline.llm.server.completions import CompletionsPipeline
from loopline.llm.server.feedback import TOPIC, FeedbackPipeline, labels
from loopline.llm.server.metrics import LLMMetrics
from loopline.llm.server.models import GEMMA, EngineOptions, LLMModel, Models
from loopline.predictions import Log, open_prediction_log
from loopline.registry import Registry
from loopline.registry.bundle import RegistryError
from loopline.serving import (
    Deployment,
    Endpoint,
    KeyRing,
    Limits,
    Metrics,
    Outbox,
    Quota,
    Routing,
    Service,
    every,
)

TITLE = "loopline LLM"
FEEDS_EVERY_S = 1.0
SWEEP_EVERY_S = 1.0


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """Args:
    state: The event log, prediction log and API keys (by default).
    base: ``gemma-3-270m`` or a registered model's name (``loopline train llm``).
    adapter: A registered LoRA adapter's name (``loopline train llm-feedback``).
    name: The model name requests use to be routed (default: the base's).
    tokens_per_minute: Each key's budget (0: none).
    """

    state: Path = Path(".loopline/llm")
    registry: str | None = None
    base: str = GEMMA
    adapter: str | None = None
    name: str | None = None
    keys: Path | None = None
    events: str | None = None
    decisions: str | None = None
    tokens_per_minute: int = 0
    watch_s: float = 5.0
    engine: EngineOptions = field(default_factory=EngineOptions)
    # an answer takes seconds to make: a second to make it durable is no burden
    limits: Limits = field(default_factory=lambda: Limits(commit_timeout_ms=2000))


@dataclass(frozen=True)
class LLMService:
    service: Service
    deployment: Deployment
    models: Models
    log: Log
    events: EventLog
    labels: LabelFeed
    outbox: Outbox[bytes]

    def close(self) -> None:
        self.outbox.close()
        self.models.close()
        self.log.close()
        self.events.close()


def build(options: ServeOptions) -> LLMService:
    """Everything the service needs, the champion loaded (ready when this returns)."""
    state = options.state
    state.mkdir(parents=True, exist_ok=True)
    registry = (
        Registry(options.registry, root=state / "registry") if options.registry else Registry()
    )
    models = Models(
        base=options.base, registry=registry, adapter=options.adapter, engine=options.engine
    )
    public = options.name or options.base
    champion = _first_champion(models, registry, options.adapter)
    deployment = Deployment(Routing(champion=champion), load=models.load)
    events = open_log(options.events or f"file://{(state / 'events.db').resolve()}")
    outbox = Outbox.to_topic(events, TOPIC, name="feedback")
    log = open_prediction_log(options.decisions or state / "completions.db")
    dlq = DeadLetterQueue(events, TOPIC)
    feed = LabelFeed(events, log, topic=TOPIC, decode=lambda rs: labels(rs, dlq))
    quota = Quota(options.tokens_per_minute) if options.tokens_per_minute > 0 else None
    metrics = Metrics()
    llm = LLMMetrics(metrics.registry, lambda: _engine_stats(models))

    def model_list() -> tuple[bytes, bytes]:
        r, now = deployment.routing, int(time.time())
        routed = [m for m in (r.champion, r.challenger, r.previous) if m is not None]
        cards = [api.ModelCard(public, now), *(api.ModelCard(m.label, now) for m in routed)]
        return b"application/json", api.encode(api.ModelList(cards))

    async def feeds() -> None:
        await asyncio.to_thread(feed.run_once)

    async def sweep() -> None:
        if models.retire(deployment.routing):  # here, on the loop: see Models.retire
            await asyncio.to_thread(models.stop_retired)

    tasks = [lambda: every(FEEDS_EVERY_S, feeds), lambda: every(SWEEP_EVERY_S, sweep)]
    followed = options.adapter or (None if options.base == GEMMA else options.base)
    if options.watch_s > 0 and followed is not None:

        def version_of() -> int | None:
            try:
                return registry.get(str(followed), "champion").version
            except RegistryError:  # no champion yet (no adapter trained): nothing to follow
                return None

        tasks.append(lambda: deployment.follow(version_of, options.watch_s, name=followed))
    service = Service(
        endpoints=endpoints(
            CompletionsPipeline(chat=False, public=public, metrics=llm, quota=quota),
            CompletionsPipeline(chat=True, public=public, metrics=llm, quota=quota),
            FeedbackPipeline(outbox.put_many),
        ),
        deployment=deployment,
        log=log,
        keys=KeyRing.load(options.keys or state / "keys.json"),
        title=TITLE,
        limits=options.limits,
        reports={"/v1/models": ("score", model_list)},
        tasks=tasks,
        metrics=metrics,
        problems=api.error_body,
    )
    return LLMService(service, deployment, models, log, events, feed, outbox)


def endpoints(
    completions: CompletionsPipeline, chat: CompletionsPipeline, feedback: FeedbackPipeline
) -> list[Endpoint]:
    return [
        Endpoint(
            path="/v1/completions", request=api.CompletionRequest, response=api.Completion,
            chunk=api.Completion, pipeline=completions, stream_field="stream",
            max_body_bytes=256 * 1024, summary="Complete a prompt (OpenAI-compatible)",
        ),
        Endpoint(
            path="/v1/chat/completions", request=api.ChatRequest, response=api.ChatCompletion,
            chunk=api.ChatChunk, pipeline=chat, stream_field="stream",
            max_body_bytes=256 * 1024, summary="Answer a conversation (OpenAI-compatible)",
        ),
        Endpoint(
            path="/v1/feedback", request=api.FeedbackRequest, response=api.FeedbackResponse,
            pipeline=feedback, check=api.check_feedback,
            summary="A thumbs up or down on a completion, or a preference between two",
        ),
    ]  # fmt: skip


def _first_champion(models: Models, registry: Registry, adapter: str | None) -> LLMModel:
    """The adapter's champion where one is registered, else the base."""
    if adapter is not None:
        with contextlib.suppress(RegistryError):
            registry.get(adapter, "champion")
            return models.load("champion")
    return models.load("base")


def _engine_stats(models: Models) -> dict[str, dict[str, float]]:
    """Each loaded base's engine's stats, by its label."""
    return {m.base.label: m.base.runner.engine.stats() for m in models.loaded() if not m.adapter}


def serve(options: ServeOptions, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service (one process, one event loop) until interrupted."""
    import uvicorn

    from loopline.monitoring import json_logging

    json_logging()
    built = build(options)
    try:
        uvicorn.run(built.service, host=host, port=port, log_level="warning",
                    access_log=False, lifespan="on")  # fmt: skip
    finally:
        built.close()
