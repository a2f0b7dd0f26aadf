"""The HTTP service: a plain ASGI application (measured: the framework costs more than
the model, see docs/decisions/0003-serving.md), msgspec for validation and JSON.

Routes: ``POST /v1/score`` (scope ``score``), ``GET /livez``, ``GET /readyz``,
``GET /metrics``, ``GET /openapi.json``, and under ``/admin/`` (scope ``admin``):
``rules/reload``, ``model/reload`` (blue-green), ``model/rollback``, ``routing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
from opentelemetry.trace import Span

from loopline.feedback.labels import DayPerformance
from loopline.monitoring import page
from loopline.monitoring.monitor import DriftCollector, DriftMonitor, DriftReport
from loopline.monitoring.page import Sampler
from loopline.monitoring.tracing import CURRENT_TRACE, Tracing
from loopline.serving.admin import Admin
from loopline.serving.api import Problem, RequestError, decode_request, openapi
from loopline.serving.asgi import Receive, Scope, Send, header, read_body, respond
from loopline.serving.auth import KeyRing
from loopline.serving.batching import Batcher
from loopline.serving.canary import CanaryGuard
from loopline.serving.collector import freeze_survivors, keep_collections_short, thaw
from loopline.serving.decisions import DecisionLog, log_row
from loopline.serving.metrics import Metrics
from loopline.serving.model import ServingModel
from loopline.serving.pan import tokenize
from loopline.serving.scorer import Decided, Scorer, payload_hash

log = logging.getLogger("loopline.serving")
_json = msgspec.json.Encoder()


@dataclass
class Limits:
    max_body_bytes: int = 16 * 1024
    max_inflight: int = 256  # beyond this, 503 + Retry-After instead of queueing
    # not durable this long after its hand-over to the log: 503 (docs/decisions/0003)
    commit_timeout_ms: float = 50.0


@dataclass
class Service:
    """The fraud decision service."""

    scorer: Scorer
    log: DecisionLog
    keys: KeyRing
    limits: Limits = field(default_factory=Limits)
    load_model: Callable[[str | int], ServingModel] | None = None  # alias or version -> loaded
    metrics: Metrics = field(default_factory=Metrics)
    tracing: Tracing | None = field(default_factory=Tracing)  # None: no spans, ids only
    ready: bool = True
    champion_version: Callable[[], int] | None = None  # the registry's champion, for the watch
    watch_s: float = 5.0
    # the drift monitor of a champion (None: no reference registered), run every drift_s
    drift_for: Callable[[ServingModel], DriftMonitor | None] | None = None
    drift_s: float = 60.0
    # matured precision and recall by decision day, for the monitoring page (None: no labels)
    performance: Callable[[], list[DayPerformance]] | None = None
    canary: CanaryGuard = field(default_factory=CanaryGuard)
    # told (challenger label, why) when the guard rolls a canary back, e.g. to record it
    on_canary_rollback: Callable[[str, str], None] | None = None
    # (every_s, step): run on the event loop every every_s while serving (e.g. take in
    # late labels); a step's failure is logged and the next one runs
    background: list[tuple[float, Callable[[], object]]] = field(default_factory=list)
    inflight: int = 0
    _pending: dict[str, asyncio.Future[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.batcher = Batcher(self.scorer, offload=self.scorer.only_reads_remote)
        self.admin = Admin(self)
        self.drift: DriftMonitor | None = None
        self.metrics.registry.register(DriftCollector(self))
        self.sampler = Sampler(self.metrics.registry, lambda: self.scorer.routing.champion.label)
        self._degraded_logged, self._degraded_since_log = -math.inf, 0
        self.watch_drift_of(self.scorer.routing.champion)

    def watch_drift_of(self, champion: ServingModel) -> None:
        """Compare ``champion``'s decisions with its own training reference from now on."""
        if self.drift_for is not None:
            self.drift = self.drift_for(champion)

    async def check_drift(self) -> DriftReport | None:
        """One drift check of the champion's recent decisions, off the event loop."""
        return None if self.drift is None else await asyncio.to_thread(self.drift.check)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        route = f"{scope['method']} {scope['path']}"
        with self._span(route, scope) as span:
            try:
                status, body, headers = await self._route(scope, receive, route)
            except RequestError as exc:
                status, body, headers = exc.status, _json.encode(exc.problem), []
                if status >= 500:
                    log.warning("refused", extra={"status": status, "error": exc.problem.error})
            except Exception:
                log.exception("request failed", extra={"route": route})
                raise
            if span is not None and span.is_recording():
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
            self.metrics.request(
                route if status != 404 else "other", status, time.perf_counter() - started
            )
            trace = CURRENT_TRACE.get()
            if trace is not None:
                headers = [*headers, (b"x-trace-id", trace.encode())]
            await respond(send, status, body, headers)

    @contextlib.contextmanager
    def _span(self, route: str, scope: Scope) -> Iterator[Span | None]:
        """The request's span (its trace id current meanwhile), or, without tracing, a
        fresh trace id alone."""
        if self.tracing is None:
            token = CURRENT_TRACE.set(uuid.uuid4().hex)
            try:
                yield None
            finally:
                CURRENT_TRACE.reset(token)
            return
        parent = header(scope, b"traceparent")
        carrier = {} if parent is None else {"traceparent": parent}
        with self.tracing.request(route, carrier) as span:
            yield span

    async def _route(
        self, scope: Scope, receive: Receive, route: str
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        if route == "POST /v1/score":
            self._require(scope, "score")
            return await self._score(scope, receive)
        if route == "GET /livez":
            return 200, b'{"status":"live"}', []
        if route == "GET /readyz":
            return (
                (200, b'{"status":"ready"}', [])
                if self.ready
                else (503, b'{"status":"loading"}', [])
            )
        if route == "GET /metrics":
            return (
                200,
                self.metrics.exposition(self),
                [(b"content-type", self.metrics.content_type.encode())],
            )
        if route == "GET /openapi.json":
            return 200, _json.encode(openapi()), []
        if route == "GET /monitor":
            return 200, page.PAGE, [(b"content-type", b"text/html; charset=utf-8")]
        if route == "GET /monitor/data":
            return 200, _json.encode(page.data(self)), []
        if scope["path"].startswith("/admin/") and scope["method"] == "POST":
            self._require(scope, "admin")
            return await self.admin.handle(
                scope["path"][len("/admin/") :],
                await read_body(receive, self.limits.max_body_bytes),
            )
        raise RequestError(404, Problem(error=f"No route {route}.", detail="See /openapi.json."))

    def _require(self, scope: Scope, needed: str) -> None:
        presented = header(scope, b"x-api-key")
        scopes = self.keys.scopes_of(presented)
        if not scopes:
            raise RequestError(401, Problem(error="Missing or unknown API key.", field="X-API-Key"))
        if needed not in scopes:
            raise RequestError(
                403, Problem(error=f"This key lacks the '{needed}' scope.", field="X-API-Key")
            )

    async def _score(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        if self.inflight >= self.limits.max_inflight:
            self.metrics.shed()
            raise RequestError(
                503, Problem(error="Overloaded: retry shortly.", detail="Retry-After: 1")
            )
        self.inflight += 1
        try:
            raw = await read_body(receive, self.limits.max_body_bytes)
            request = decode_request(raw)
            key = header(scope, b"idempotency-key") or request.transaction_id
            if len(key) > 128:
                raise RequestError(
                    422,
                    Problem(
                        error="Idempotency-Key is longer than 128 characters.",
                        field="Idempotency-Key",
                    ),
                )
            fingerprint = self._fingerprint(request)
            replay = await self._replay(key, fingerprint)
            if replay is not None:
                return 200, replay, []
            future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._pending[key] = future
            try:
                body = await self._decide(request, key, fingerprint)
                future.set_result(body)
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning
                raise
            finally:
                del self._pending[key]
            return 200, body, []
        finally:
            self.inflight -= 1

    def _fingerprint(self, request: Any) -> str:
        body = msgspec.to_builtins(request)
        if body.get("card_number"):  # never hash a card number itself
            body["card_token"] = tokenize(body.pop("card_number"), self.scorer.token_key)
        return payload_hash(body)

    async def _replay(self, key: str, fingerprint: str) -> bytes | None:
        pending = self._pending.get(key)
        if pending is not None:
            await asyncio.shield(pending)
        stored = self.log.find(key)
        if stored is None:
            return None
        if stored.payload_sha256 != fingerprint:
            raise RequestError(
                422,
                Problem(
                    error=f"Idempotency key {key!r} was already used with a different request.",
                    field="transaction_id",
                    detail="Use a new transaction id / Idempotency-Key for a new transaction.",
                ),
            )
        self.metrics.replayed()
        response = msgspec.json.decode(stored.response)
        response["replayed"] = True
        return _json.encode(response)

    async def _decide(self, request: Any, key: str, fingerprint: str) -> bytes:
        trace_id = CURRENT_TRACE.get() or uuid.uuid4().hex
        decided = await self.batcher.decide(request, trace_id)
        if decided.response.degraded:
            self._degraded_since_log += 1
            now = time.monotonic()
            if now - self._degraded_logged >= 1.0:  # a line a second, not one per request
                log.warning(
                    "degraded answer",
                    extra={"degraded": decided.response.degraded,
                           "model_version": decided.response.model_version,
                           "degraded_answers": self._degraded_since_log},
                )  # fmt: skip
                self._degraded_logged, self._degraded_since_log = now, 0
        body = _json.encode(decided.response)
        self.watch_canary(decided)
        row = log_row(decided, key, fingerprint, body, int(self.scorer.clock() * 1000))
        timeout = self.limits.commit_timeout_ms / 1000
        try:
            await asyncio.wait_for(asyncio.shield(self.log.write(row)), timeout=timeout)
        except TimeoutError:
            self.metrics.shed()
            raise RequestError(
                503,
                Problem(
                    error="The decision was not durable in time: the prediction log is slow.",
                    detail="Retry-After: 1; the retry with the same transaction id returns it.",
                ),
            ) from None
        self.scorer.learn(decided)
        self.metrics.decided(decided)
        return body

    def watch_canary(self, decided: Decided) -> None:
        """Feed the canary guard while a challenger takes traffic (and its shadow tally
        while it watches); roll it back when the guard says it degraded (checked every 50
        of its decisions). The HTTP path calls it for each decision, and so does a
        streaming scorer sharing this service's."""
        routing = self.scorer.routing
        if routing.challenger is None:
            return
        if decided.shadow_score is not None and decided.model_score is not None:
            self.canary.record_shadow(
                champion_flags=decided.model_score >= routing.champion.review_threshold,
                challenger_flags=decided.shadow_score >= routing.challenger.review_threshold,
            )
        if routing.canary_percent <= 0:
            return
        r = decided.response
        error = any(d.startswith("model_error") or d == "model_fallback" for d in r.degraded)
        guard = self.canary
        guard.record(decided.arm, flagged=r.decision != "approve", error=error,
                     model_ms=r.timings_ms.get("model", 0.0))  # fmt: skip
        if decided.arm != "challenger" or guard.arms["challenger"].decisions % 50:
            return
        why = guard.verdict()
        if why is None:
            return
        label = routing.challenger.label
        routing.canary_percent, routing.challenger = 0.0, None
        guard.reset()
        self.metrics.canary_rollbacks.inc()
        log.warning("canary rolled back", extra={"challenger": label, "why": why})
        if self.on_canary_rollback is not None:
            self.on_canary_rollback(label, why)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        watcher: asyncio.Task[None] | None = None
        collector: asyncio.Task[None] | None = None
        drift: asyncio.Task[None] | None = None
        sampling: asyncio.Task[None] | None = None
        steps: list[asyncio.Task[None]] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.champion_version is not None and self.watch_s > 0:
                    watcher = asyncio.create_task(self._watch_champion())
                freeze_survivors()  # the models, libraries and loaded state: never scanned again
                collector = asyncio.create_task(keep_collections_short())
                drift = asyncio.create_task(self._watch_drift()) if self.drift_s > 0 else None
                sampling = asyncio.create_task(self._sample())
                steps = [asyncio.create_task(_every(t, step)) for t, step in self.background]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if collector is not None:
                    collector.cancel()
                    thaw()
                if drift is not None:
                    drift.cancel()
                if sampling is not None:
                    sampling.cancel()
                if watcher is not None:
                    watcher.cancel()
                for task in steps:
                    task.cancel()
                self.batcher.close()
                self.scorer.flush()  # decided transactions into the features before exit
                with contextlib.suppress(Exception):
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def _watch_champion(self) -> None:
        """Blue-green on the registry: when the ``champion`` alias moves, load and warm
        the new version off the event loop, then swap (the registry is read here, every
        ``watch_s``, never on the request path)."""
        assert self.champion_version is not None
        while True:
            await asyncio.sleep(self.watch_s)
            try:
                version = await asyncio.to_thread(self.champion_version)
                if version != self.scorer.routing.champion.version:
                    swapped = await self.admin.reload_model({"version": version})
                    self.metrics.model_swaps.inc()
                    log.info("champion swapped", extra=swapped)
            except Exception:  # a registry hiccup must not stop the watch
                self.metrics.watch_failures.inc()
                log.warning("registry watch failed", exc_info=True)

    async def _sample(self) -> None:
        """The monitoring page's time series: the service's counters every few seconds."""
        while True:
            self.sampler.sample()
            await asyncio.sleep(self.sampler.every_s)

    async def _watch_drift(self) -> None:
        """Every ``drift_s``, compare the champion's recent decisions with its training
        reference (see :mod:`loopline.monitoring.monitor`)."""
        while True:
            await asyncio.sleep(self.drift_s)
            try:
                report = await self.check_drift()
            except Exception:  # a failed check must not stop the watch
                log.warning("drift check failed", exc_info=True)
                continue
            if report is not None and report.drifted:
                log.warning("drift", extra={"features": report.drifted, "rows": report.rows})


async def _every(seconds: float, step: Callable[[], object]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            step()
        except Exception:  # one failed step must not stop the next
            log.warning("background step failed", exc_info=True)
