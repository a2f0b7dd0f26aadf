"""``loopline serve moderation``: the moderation service, wired from the platform's parts.

- ``POST /v1/moderate``: text and images are answered at once (the cascade, then the
  region's policy); content with audio or video is accepted with a ``pending`` answer and
  analysed by a background worker (:class:`loopline.serving.Jobs`), its decision kept for
  ``GET /v1/moderate/{id}`` and posted to the request's ``callback_url``.
  The background answer is logged beside the pending one (key ``<id>#final``).
- An ``escalate`` decision queues the item for review (:mod:`.review`); reviewers claim
  tasks and give verdicts (``POST /v1/review/claim``, ``POST /v1/review/verdict``, scope
  ``label``); authors appeal (``POST /v1/appeal``). A final verdict is published to
  ``moderation.verdicts``, and the feedback stage joins it to the prediction log as the
  item's label.
- A user whose content keeps being removed is rate-limited (:mod:`.offenders`): 429 with a
  retry-after.
- The registry's ``moderation`` champion is followed (blue-green), and the policy file is
  re-read when it changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from loopline.apps.moderation import api
from loopline.apps.moderation.api import (
    Ack,
    AppealRequest,
    ClaimRequest,
    ClaimResponse,
    ModerateRequest,
    ModerateResponse,
    Reason,
    VerdictRequest,
)
from loopline.apps.moderation.cascade import Assessment, Content, Readers
from loopline.apps.moderation.events import VERDICT_CODEC, VERDICTS, Verdict, VerdictLabels
from loopline.apps.moderation.offenders import Offenders
from loopline.apps.moderation.pipeline import MODEL, ModerationModel, load
from loopline.apps.moderation.policy import Policies
from loopline.apps.moderation.review import SUMMARY_MAX, ReviewQueue
from loopline.apps.moderation.review_routes import ReviewPipeline
from loopline.apps.moderation.taxonomy import SEVERITY
from loopline.events import DeadLetterQueue, EventLog, Message, open_log
from loopline.feedback import LabelFeed
from loopline.predictions import Log, open_prediction_log
from loopline.registry import Registry
from loopline.serving import (
    CURRENT_CALLER,
    Deployment,
    Endpoint,
    Jobs,
    KeyRing,
    Limits,
    Prediction,
    RequestError,
    Routing,
    Service,
    every,
    refuse,
)

TITLE = "loopline moderation"
MAX_OWNERS = 100_000  # content ids awaiting their job, with the caller who may poll
_json = msgspec.json.Encoder()


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    state: Path = Path(".loopline/moderation")
    registry: str | None = None
    keys: Path | None = None
    events: str | None = None  # event log URL (default: file:// under state)
    decisions: str | None = None  # postgresql://... prediction log (default: SQLite)
    policies: Path | None = None  # the policy file (default: the packaged one)
    watch_s: float = 5.0
    limits: Limits = field(default_factory=lambda: Limits(body_timeout_s=60.0))  # large bodies
    offender_limit: float = 12.0  # decayed severity of removed content before a 429
    secret: bytes = b""  # keys the hash of user ids (default: a random per-state secret)
    review_retention_s: float = 30 * 86_400  # how long decided items' words are kept
    private_callbacks: bool = False  # callbacks to loopback and private addresses (tests)


class ModeratePipeline:
    """``POST /v1/moderate``: the cascade, the policy, the review queue, the offenders."""

    def __init__(
        self, policies: Policies, review: ReviewQueue, offenders: Offenders, jobs: Jobs,
        deployment: Deployment, log: Log,
    ) -> None:  # fmt: skip
        self.policies, self.review, self.offenders = policies, review, offenders
        self.jobs, self.deployment, self.log = jobs, deployment, log
        self._loop: asyncio.AbstractEventLoop | None = None  # the service's, for log writes
        self._owners: OrderedDict[str, str] = OrderedDict()  # content id -> caller, bounded

    def request_id(self, request: ModerateRequest) -> str:
        return request.id

    def fingerprint(self, request: ModerateRequest) -> Any:
        parts = [hashlib.sha256((p.text or p.data or "").encode()).hexdigest()[:24]
                 for p in request.parts]  # fmt: skip
        return {"parts": parts, "region": request.region, "reach": request.reach}

    def check(self, request: ModerateRequest) -> None:
        api.check(request)
        self._loop = asyncio.get_running_loop()  # checks run on the service's loop
        caller = CURRENT_CALLER.get()
        if caller is not None and api.is_async(request):  # who may poll for the answer
            self._owners[request.id] = caller.name
            while len(self._owners) > MAX_OWNERS:
                self._owners.popitem(last=False)
        if request.user is not None:
            allowed, retry_after = self.offenders.allowed(request.user)
            if not allowed:
                wait = str(max(int(retry_after), 1)).encode()
                raise refuse(429, "This user's recent content was removed too often.",
                             field="user", headers=[(b"retry-after", wait)])  # fmt: skip
        if api.is_async(request) and self.jobs.full:
            raise refuse(503, "Too much audio and video is waiting; try again shortly.",
                         headers=[(b"retry-after", b"5")])  # fmt: skip

    def predict_many(
        self, requests: Sequence[ModerateRequest], trace_ids: Sequence[str], routing: Routing
    ) -> list[Prediction[ModerateResponse]]:
        """Text and images now (the fast stage over the whole batch), audio and video
        later; a request whose content fails to decode gets a failed answer of its own."""
        model: ModerationModel = routing.champion  # type: ignore[assignment]
        out: list[Prediction[ModerateResponse] | None] = [None] * len(requests)
        now: list[tuple[int, Content]] = []
        for n, request in enumerate(requests):
            try:
                if api.is_async(request):
                    out[n] = self._later(request, model)
                else:
                    now.append((n, _content(request)))
            except (ValueError, RequestError) as exc:
                out[n] = self._failed(request, model, exc)
        found = model.cascade.assess([c for _, c in now])
        for (n, _), a in zip(now, found, strict=True):
            out[n] = self._prediction(requests[n], self.decide(requests[n], a, model), a, model)
        return [p for p in out if p is not None]

    def decide(
        self, request: ModerateRequest, a: Assessment, model: ModerationModel
    ) -> ModerateResponse:
        decision = self.policies.decide(request.region, a.scores)
        task, deadline = None, None
        if decision.action == "escalate":
            category = decision.category or max(a.scores, key=a.scores.__getitem__)
            summary = " | ".join(f"{k}: {v}" for k, v in a.texts.items())[:SUMMARY_MAX]
            task = self.review.submit(
                request.id, category=category, score=a.scores[category],
                uncertainty=a.uncertain, reach=request.reach, region=decision.region,
                summary=summary or "(no words: an image or a recording)",
            )  # fmt: skip
            if task is not None:
                deadline = int(self.review.deadline(task) * 1000)
        full = decision.action == "escalate" and task is None
        if decision.action == "remove" and request.user is not None and decision.category:
            self.offenders.strike(request.user, SEVERITY[decision.category])
        return ModerateResponse(
            id=request.id, status="done", action=decision.action, category=decision.category,
            score=decision.score, rule=decision.rule, region=decision.region,
            policy_version=decision.policy_version,
            reasons=[Reason(category=r.category, score=r.score, threshold=r.threshold,
                            action=r.action) for r in decision.reasons],
            scores=a.scores, stage=a.stage, language=a.language.code,
            modalities=list(a.modalities), review_task=None if task is None else str(task),
            review_deadline_ms=deadline, model_version=model.label,
            degraded=["review_queue_full"] if full else [],
        )  # fmt: skip

    def _later(
        self, request: ModerateRequest, model: ModerationModel
    ) -> Prediction[ModerateResponse]:
        pending = ModerateResponse(id=request.id, status="pending", model_version=model.label,
                                   modalities=sorted({p.type for p in request.parts}))  # fmt: skip

        def work() -> bytes:
            champion: ModerationModel = self.deployment.routing.champion  # type: ignore[assignment]
            a = champion.cascade.assess([_content(request, media=True)])[0]
            response = self.decide(request, a, champion)
            body = _json.encode(response)
            self._log_final(self._prediction(request, response, a, champion), body)
            return body

        owner = self._owner(request)
        self.jobs.submit(request.id, work, pending=_json.encode(pending), owner=owner,
                         callback=request.callback_url)  # fmt: skip
        return Prediction(
            pending, request_id=request.id, routing_key=self._routing_key(request),
            model_version=model.label, arm="champion",
            inputs={"modalities": pending.modalities}, outputs={"status": "pending"},
            outcome="pending",
        )  # fmt: skip

    def _log_final(self, prediction: Prediction[ModerateResponse], body: bytes) -> None:
        """A background answer into the prediction log, beside its pending one (same
        request id, key ``<id>#final``): the audit trail, and the row its verdict joins."""
        if self._loop is None or self._loop.is_closed():
            return
        row = prediction.row(f"{prediction.request_id}#final", "", int(time.time() * 1000), body)
        try:
            asyncio.run_coroutine_threadsafe(self.log.write(row), self._loop).result(timeout=30)
        except Exception:  # the answer still reaches its caller; the log says why not here
            logging.getLogger("loopline.moderation").warning("final answer not logged",
                                                             exc_info=True)  # fmt: skip

    def _failed(
        self, request: ModerateRequest, model: ModerationModel, exc: Exception
    ) -> Prediction[ModerateResponse]:
        error = exc.problem.error if isinstance(exc, RequestError) else f"unreadable content: {exc}"
        response = ModerateResponse(id=request.id, status="failed", error=error[:300],
                                    model_version=model.label, degraded=["unreadable"])  # fmt: skip
        return Prediction(response, request_id=request.id, routing_key=self._routing_key(request),
                          model_version=model.label, arm="champion", inputs={},
                          outputs={"status": "failed"}, outcome="failed",
                          degraded=["unreadable"])  # fmt: skip

    def _owner(self, request: ModerateRequest) -> str:
        return self._owners.pop(request.id, "")

    def _routing_key(self, request: ModerateRequest) -> str:
        """The author's pseudonym (never the raw id), or the content's id."""
        return self.offenders.pseudonym(request.user) if request.user else request.id

    def _prediction(
        self, request: ModerateRequest, response: ModerateResponse, a: Assessment,
        model: ModerationModel,
    ) -> Prediction[ModerateResponse]:  # fmt: skip
        fusion = [] if a.inputs is None else [round(float(x), 4) for x in a.inputs]
        return Prediction(
            response, request_id=request.id, routing_key=self._routing_key(request),
            model_version=model.label, arm="champion",
            inputs={"modalities": list(a.modalities), "language": a.language.code,
                    "tricks": list(a.tricks), "chars": a.words, "region": request.region},
            outputs={"scores": a.scores, "harmful": a.harmful, "stage": a.stage,
                     "action": response.action, "category": response.category,
                     "fusion": fusion, "hits": a.hits},
            outcome=response.action or "", positive=response.action not in ("allow", None),
            timings_ms=dict(a.timings_ms),
        )  # fmt: skip

    def committed(self, prediction: Prediction[ModerateResponse]) -> None:
        pass

    def close(self) -> None:
        self.jobs.close()


def _content(request: ModerateRequest, *, media: bool = False) -> Content:
    """The request's parts decoded (audio and video only with ``media``: the worker's)."""
    from loopline.apps.moderation.media import decode_audio, decode_image

    texts, images, audio = [], [], []
    for i, part in enumerate(request.parts):
        if part.type == "text" and part.text:
            texts.append(part.text)
        elif part.type == "image":
            images.append(decode_image(api.media(part, i)))
        elif media and part.type == "audio":
            audio.append(decode_audio(api.media(part, i)))
        elif media and part.type == "video":
            from loopline.apps.moderation.video import demux

            clip = demux(api.media(part, i))
            images.extend(clip.frames)
            if clip.audio.size:
                audio.append(clip.audio)
    kinds = tuple(p.type for p in request.parts)
    return Content(texts=tuple(texts), images=tuple(images), audio=tuple(audio), kinds=kinds)


@dataclass(frozen=True)
class ModerationService:
    service: Service
    pipeline: ModeratePipeline
    review: ReviewQueue
    policies: Policies
    labels: LabelFeed
    log: Log
    events: EventLog

    def close(self) -> None:
        self.pipeline.close()
        self.review.close()
        self.log.close()
        self.events.close()


def _secret(state: Path) -> bytes:
    from loopline.files import write_private

    path = state / "offenders.key"
    if not path.exists():
        import secrets

        write_private(path, secrets.token_bytes(32))
    return path.read_bytes()


def build(options: ServeOptions, *, readers: Readers | None = None) -> ModerationService:
    """Everything the service needs, loaded (ready when this returns); ``readers``: the
    heavy models, when the caller has them loaded already."""
    state = options.state
    state.mkdir(parents=True, exist_ok=True)
    registry = (
        Registry(options.registry, root=state / "registry") if options.registry else Registry()
    )
    readers = (readers or Readers()).load()  # one set for every version: a swap reloads none
    champion = load(registry.resolve(MODEL, "champion"), readers=readers)
    deployment = Deployment(
        Routing(champion=champion),
        load=lambda ref: load(registry.resolve(MODEL, ref), readers=readers),
    )
    events = open_log(options.events or f"file://{(state / 'events.db').resolve()}")
    log = open_prediction_log(options.decisions or state / "decisions.db")
    labels = LabelFeed(
        events, log, topic=VERDICTS, decode=VerdictLabels(DeadLetterQueue(events, VERDICTS))
    )

    def publish(
        item_id: str, label: str, verdicts: tuple[Any, ...], *, appeal: bool = False
    ) -> None:
        verdict = Verdict(item=item_id, label=label, reviews=max(len(verdicts), 1),  # type: ignore[arg-type]
                          appeal=appeal, event_time_ms=int(time.time() * 1000))  # fmt: skip
        events.append_many(VERDICTS, [Message(VERDICT_CODEC.encode(verdict), key=item_id.encode())])

    review = ReviewQueue(state / "review.db", on_final=publish)
    policies = Policies(options.policies)
    offenders = Offenders(limit=options.offender_limit, secret=options.secret or _secret(state))
    jobs = Jobs(state / "jobs.db", private_callbacks=options.private_callbacks,
                failed=lambda key, error: _json.encode(
                    ModerateResponse(id=key, status="failed", error=error)))  # fmt: skip
    pipeline = ModeratePipeline(policies, review, offenders, jobs, deployment, log)

    async def upkeep() -> None:
        labels.run_once()
        policies.refresh()
        review.forget(time.time() - options.review_retention_s)

    tasks = [lambda: every(1.0, upkeep)]
    if options.watch_s > 0:
        tasks.append(lambda: deployment.follow(lambda: registry.get(MODEL, "champion").version,
                                               options.watch_s))  # fmt: skip
    endpoints = [
        Endpoint(path="/v1/moderate", request=ModerateRequest, response=ModerateResponse,
                 pipeline=pipeline, check=pipeline.check, offload=True,
                 max_body_bytes=api.MAX_BODY,
                 summary="Moderate content (text, images, audio, video)"),
        Endpoint(path="/v1/review/claim", request=ClaimRequest, response=ClaimResponse,
                 pipeline=ReviewPipeline(review, "claim"), scope="label",
                 summary="A reviewer takes the most urgent task"),
        Endpoint(path="/v1/review/verdict", request=VerdictRequest, response=Ack,
                 pipeline=ReviewPipeline(review, "verdict"), scope="label",
                 summary="A reviewer's verdict on a task"),
        Endpoint(path="/v1/appeal", request=AppealRequest, response=Ack,
                 pipeline=ReviewPipeline(review, "appeal"), summary="An author appeals a decision"),
    ]  # fmt: skip
    service = Service(
        endpoints=endpoints, deployment=deployment, log=log,
        keys=KeyRing.load(options.keys or state / "keys.json"), title=TITLE,
        limits=options.limits, tasks=tasks, lookups={"/v1/moderate/": ("score", jobs.get)},
    )  # fmt: skip
    return ModerationService(service, pipeline, review, policies, labels, log, events)


def serve(options: ServeOptions, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service (one process, one event loop) until interrupted."""
    import uvicorn

    from loopline.monitoring import json_logging

    json_logging()
    built = build(options)
    uvicorn.run(built.service, host=host, port=port, log_level="warning", access_log=False,
                lifespan="on")  # fmt: skip
