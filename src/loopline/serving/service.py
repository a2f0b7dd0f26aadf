"""The serving kernel: a plain ASGI application (measured: a framework costs more than the
model, see docs/decisions/0003-serving.md) that knows no application.

An application hands it endpoints (:class:`~loopline.serving.endpoint.Endpoint`: request
and response types, a pipeline), a :class:`~loopline.serving.routing.Deployment` of
models and a prediction log; the kernel brings the rest: API keys and scopes, per-route
body limits, idempotency, dynamic batching, group-committed logging (an answer is
returned only once it is durable), back-pressure, streamed answers, metrics, tracing,
admin routes, health, and the background tasks that watch the registry and the data.

Routes: ``POST <endpoint>`` (the endpoint's scope), ``GET /livez``, ``GET /readyz``,
``GET /metrics``, ``GET /openapi.json``, the pages given (e.g. ``GET /monitor``: no key,
no data), the reports given (``GET /monitor/data``: scope ``monitor``; or the scope
given with one, e.g. a model list for ``score``), and ``POST /admin/<action>`` (scope
``admin``). A key comes as ``X-API-Key: KEY`` or ``Authorization: Bearer KEY`` (what
OpenAI's clients send); while a request is served, :data:`CURRENT_CALLER` is its key
(per-key rate limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import msgspec
from opentelemetry.trace import Span

from loopline.monitoring.tracing import CURRENT_TRACE, Tracing
from loopline.predictions import PredictionLog
from loopline.serving.admin import Action, Admin
from loopline.serving.asgi import (
    EventStream,
    Headers,
    Receive,
    Scope,
    Send,
    disconnected,
    header,
    read_body,
    respond,
)
from loopline.serving.auth import ApiKey, KeyRing, presented
from loopline.serving.batching import Batcher
from loopline.serving.collector import freeze_survivors, keep_collections_short, thaw
from loopline.serving.durable import Durable, LateError
from loopline.serving.endpoint import Endpoint
from loopline.serving.idempotency import payload_hash
from loopline.serving.limits import Limits
from loopline.serving.lookups import Lookup, Lookups
from loopline.serving.loop import every
from loopline.serving.openapi import openapi_document
from loopline.serving.problems import Problem, RequestError, decode, refuse
from loopline.serving.routing import Deployment
from loopline.serving.screening import idempotency_key, screen, visible
from loopline.serving.telemetry import Metrics

log = logging.getLogger("loopline.serving")
_json = msgspec.json.Encoder()
Answer = tuple[int, bytes, Headers]
Page = Callable[[], tuple[bytes, bytes]]  # () -> (content type, body)
Task = Callable[[], Awaitable[None]]  # a coroutine run while serving
KEYS_EVERY_S = 2.0  # how often the API key file is checked for changes (revoked keys)
CURRENT_CALLER: contextvars.ContextVar[ApiKey | None] = contextvars.ContextVar(
    "loopline_caller", default=None
)


class Service:
    """An application's endpoints served with the kernel's machinery.

    Args:
        endpoints: The application's routes.
        deployment: The models and their routing.
        log: Where every prediction is committed before it is answered.
        keys: The API keys and their scopes.
        title: The OpenAPI document's title.
        limits: Back-pressure and body limits.
        admin: The application's own admin actions, by path below ``/admin/``.
        pages: ``GET`` routes without a key (a monitoring page's HTML), by path.
        reports: ``GET`` routes of data, by path: scope ``monitor`` (what a page draws),
            or ``(scope, page)``.
        lookups: ``GET <prefix><key>`` routes, by prefix (ending in ``/``): ``(scope,
            find)``, where ``find(key, caller)`` returns the JSON body kept under ``key``
            for the calling key's name (a job's result, say), or None for a 404.
        tasks: Coroutines to run while serving (registry watch, drift checks, label
            feeds), cancelled on shutdown.
        tracing: One span per request (None: trace ids only).
        clock: Seconds since 1970: when a prediction is logged as decided (a
            simulation's clock, or the wall clock).
        metrics: The Prometheus registry and its metrics.
        problems: How a refused request's body is written (status, problem -> JSON):
            the kernel's :class:`Problem` by default; another API's error shape
            where clients expect one (OpenAI's ``{"error": {"message": ...}}``).
    """

    def __init__(
        self,
        *,
        endpoints: Sequence[Endpoint],
        deployment: Deployment,
        log: PredictionLog,
        keys: KeyRing,
        title: str = "loopline service",
        limits: Limits | None = None,
        admin: Mapping[str, Action] | None = None,
        pages: Mapping[str, Page] | None = None,
        reports: Mapping[str, Page | tuple[str, Page]] | None = None,
        lookups: Mapping[str, tuple[str, Lookup]] | None = None,
        tasks: Sequence[Task] = (),
        tracing: Tracing | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        problems: Callable[[int, Problem], bytes] | None = None,
    ) -> None:
        self.endpoints = {f"POST {e.path}": e for e in endpoints}
        self.deployment = deployment
        self.log = log
        self.keys = keys
        self.title = title
        self.limits = limits or Limits()
        self.admin = Admin(deployment, admin)
        self.pages = {f"GET {path}": page for path, page in (pages or {}).items()}
        self.reports = {
            f"GET {path}": report if isinstance(report, tuple) else ("monitor", report)
            for path, report in (reports or {}).items()
        }
        self.lookups = Lookups(lookups)
        self.tasks: list[Task] = [*tasks, self._watch_keys]
        self.tracing = tracing
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.problem_body = problems or (lambda _, problem: _json.encode(problem))
        self.metrics.watch(deployment)
        self.ready = True
        self.inflight = 0
        self._batchers = {
            route: Batcher(e.pipeline, lambda: self.deployment.routing, offload=e.offload)
            for route, e in self.endpoints.items()
            if not e.streams
        }
        self.durable = Durable(deployment=deployment, log=log, limits=self.limits,
                               metrics=self.metrics, clock=clock)  # fmt: skip
        self.idempotency = self.durable.idempotency
        self._routes = {
            *self.endpoints, *self.pages, *self.reports, *self.lookups.routes,
            "GET /livez", "GET /readyz",
            "GET /metrics", "GET /openapi.json", *(f"POST /admin/{a}" for a in self.admin.actions),
        }  # fmt: skip
        self._openapi = _json.encode(
            openapi_document(title, endpoints, list(self.lookups.by_prefix))
        )

    async def _watch_keys(self) -> None:
        """Read the key file again when it changes: revoked keys stop working at once."""
        await every(KEYS_EVERY_S, self.keys.refresh)

    def batcher(self, path: str) -> Batcher:
        return self._batchers[f"POST {path}"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        route = f"{scope['method']} {scope['path']}"
        with self._span(route, scope) as span:
            answer: Answer | None
            try:
                answer = await self._route(scope, receive, send, route)
            except RequestError as exc:
                answer = exc.status, self.problem_body(exc.status, exc.problem), exc.headers
            except Exception:
                log.exception("request failed", extra={"route": route})
                raise
            status = 200 if answer is None else answer[0]  # None: streamed, already sent
            if span is not None and span.is_recording():
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
            label = route if route in self._routes else self.lookups.label(route)
            self.metrics.request(label, status, time.perf_counter() - started)
            if answer is not None:
                trace = CURRENT_TRACE.get()
                headers = (
                    answer[2] if trace is None else [*answer[2], (b"x-trace-id", trace.encode())]
                )
                await respond(send, answer[0], answer[1], headers)

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

    async def _route(self, scope: Scope, receive: Receive, send: Send, route: str) -> Answer | None:
        endpoint = self.endpoints.get(route)
        if endpoint is not None:
            caller = self._require(scope, endpoint.scope)
            token = CURRENT_CALLER.set(caller)
            try:
                if endpoint.streams:
                    return await self._stream(endpoint, caller, scope, receive, send)
                return await self._predict(endpoint, route, caller, scope, receive)
            finally:
                CURRENT_CALLER.reset(token)
        fixed = self._kernel_route(route)
        if fixed is not None:
            return fixed
        page = self.pages.get(route)
        report = self.reports.get(route)
        if report is not None:
            self._require(scope, report[0])
            page = report[1]
        if page is not None:
            content_type, body = page()
            return 200, body, [(b"content-type", content_type)]
        if scope["method"] == "GET" and (found := self._lookup(scope, route)) is not None:
            return 200, found, [(b"content-type", b"application/json")]
        if scope["path"].startswith("/admin/") and scope["method"] == "POST":
            self._require(scope, "admin")
            body = await read_body(
                scope, receive, self.limits.max_admin_bytes, self.limits.body_timeout_s
            )
            return 200, await self.admin.handle(scope["path"][len("/admin/") :], body), []
        raise refuse(404, f"No route {route}.", detail="See /openapi.json.")

    def _kernel_route(self, route: str) -> Answer | None:
        """Health, metrics and the OpenAPI document (None: another route)."""
        if route == "GET /livez":
            return 200, b'{"status":"live"}', []
        if route == "GET /readyz":
            return (
                (200, b'{"status":"ready"}', [])
                if self.ready
                else (503, b'{"status":"loading"}', [])
            )
        if route == "GET /metrics":
            body = self.metrics.exposition(self.inflight, self.deployment)
            return 200, body, [(b"content-type", self.metrics.content_type.encode())]
        if route == "GET /openapi.json":
            return 200, self._openapi, []
        return None

    def _lookup(self, scope: Scope, route: str) -> bytes | None:
        """The body a lookup keeps under the path's key (None: no lookup's prefix)."""
        found = self.lookups.match(scope["path"])
        if found is None:
            return None
        needed, key, find = found
        return self.lookups.answer(route, key, self._require(scope, needed).name, find)

    def _require(self, scope: Scope, needed: str) -> ApiKey:
        key = presented(header(scope, b"x-api-key"), header(scope, b"authorization"))
        caller = self.keys.identify(key)
        if caller is None:
            raise refuse(401, "Missing, unknown, expired or revoked API key.", field="X-API-Key")
        if not caller.allows(needed):
            raise refuse(403, f"This key lacks the '{needed}' scope.", field="X-API-Key")
        return caller

    def _admit(self) -> None:
        if self.inflight >= self.limits.max_inflight:
            self.metrics.shed()
            raise refuse(503, "Overloaded: retry shortly.", detail="Retry-After: 1")

    async def _request(
        self, endpoint: Endpoint, caller: ApiKey, scope: Scope, receive: Receive
    ) -> tuple[Any, str, str]:
        """The decoded and checked request, its idempotency key and its fingerprint (of
        the caller and the content: another caller's key is not replayed to this one)."""
        body = await read_body(scope, receive, endpoint.max_body_bytes, self.limits.body_timeout_s)
        request = decode(endpoint.decoder, body)
        screen(request, endpoint.pan_fields)
        if endpoint.check is not None:
            endpoint.check(request)
        pipeline = endpoint.pipeline
        key = idempotency_key(header(scope, b"idempotency-key"), pipeline.request_id(request))
        return request, key, payload_hash([caller.name, pipeline.fingerprint(request)])

    def _visible(self, endpoint: Endpoint, caller: ApiKey, response: Any, body: bytes) -> bytes:
        """The answer as ``caller`` may see it: without the ``detail`` scope, the
        endpoint's detail fields are null."""
        if not endpoint.detail_fields or caller.allows("detail"):
            return body
        return visible(endpoint.detail_fields, response, body)

    async def _predict(
        self, endpoint: Endpoint, route: str, caller: ApiKey, scope: Scope, receive: Receive
    ) -> Answer:
        self._admit()
        self.inflight += 1
        try:
            request, key, fingerprint = await self._request(endpoint, caller, scope, receive)
            replay = await self.durable.replay(key, fingerprint)
            if replay is not None:
                return 200, self._visible(endpoint, caller, None, replay), []
            answered = self.idempotency.claim(key)
            try:
                trace_id = CURRENT_TRACE.get() or uuid.uuid4().hex
                prediction = await self._batchers[route].predict(request, trace_id)
                body = _json.encode(prediction.response)
                await self.durable.commit(endpoint, prediction, key, fingerprint, body, answered)
            except BaseException as exc:
                if not answered.done() and not isinstance(exc, LateError):
                    self.idempotency.release(key, exc)
                raise
            return 200, self._visible(endpoint, caller, prediction.response, body), []
        finally:
            self.inflight -= 1

    async def _stream(
        self, endpoint: Endpoint, caller: ApiKey, scope: Scope, receive: Receive, send: Send
    ) -> Answer | None:
        """An answer as Server-Sent Events (or whole, where the request's
        ``stream_field`` is false), logged once whole; cancelled if the caller goes
        away. Errors before the first event are plain 4xx answers; after it, an
        ``error`` event."""
        self._admit()
        self.inflight += 1
        try:
            request, key, fingerprint = await self._request(endpoint, caller, scope, receive)
            field = endpoint.stream_field
            streamed = endpoint.stream or (field is not None and bool(getattr(request, field)))
            replay = await self.durable.replay(key, fingerprint)
            trace = CURRENT_TRACE.get() or uuid.uuid4().hex
            if not streamed:
                if replay is not None:
                    return 200, self._visible(endpoint, caller, None, replay), []
                body = await self._stream_answer(
                    endpoint, request, key, fingerprint, trace, receive, None
                )
                if body is None:  # the caller went away
                    return None
                return 200, self._visible(endpoint, caller, None, body), []
            events = EventStream(send, [(b"x-trace-id", trace.encode())])
            if replay is not None:
                await events.send(replay, event="replay")
            else:
                await self._stream_answer(
                    endpoint, request, key, fingerprint, trace, receive, events
                )
            await events.close()
            return None
        finally:
            self.inflight -= 1

    async def _stream_answer(
        self, endpoint: Endpoint, request: Any, key: str, fingerprint: str, trace: str,
        receive: Receive, events: EventStream | None,
    ) -> bytes | None:  # fmt: skip
        """Run the pipeline's stream (its chunks to ``events``, or dropped for a whole
        answer); commit and return the whole answer's body (None: the caller left)."""

        async def emit(chunk: Any) -> None:
            if events is not None:
                await events.send(_json.encode(chunk))

        routing = self.deployment.routing
        answer = asyncio.ensure_future(endpoint.pipeline.stream(request, trace, routing, emit))
        gone = asyncio.ensure_future(disconnected(receive))
        await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not answer.done():  # the caller went away: stop making its answer
            answer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await answer
            self.metrics.cancelled.inc()
            return None
        gone.cancel()
        try:
            prediction = answer.result()
            body = _json.encode(prediction.response)
            await self.durable.commit(endpoint, prediction, key, fingerprint, body)
        except RequestError as exc:
            if events is None or not events.started:
                raise  # nothing sent yet: a plain 4xx
            await events.send(self.problem_body(exc.status, exc.problem), event="error")
            return None
        except Exception:
            if events is None:
                raise
            log.exception("streamed answer failed", extra={"route": endpoint.path})
            failed = Problem(error="The answer failed.")
            await events.send(self.problem_body(500, failed), event="error")
            return None
        if events is not None:
            await events.send(b"[DONE]")
        return body

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        running: list[asyncio.Task[None]] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                freeze_survivors()  # the models, libraries and loaded state: never scanned again
                running = [asyncio.ensure_future(keep_collections_short())]
                running += [asyncio.ensure_future(task()) for task in self.tasks]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in running:
                    task.cancel()
                thaw()
                for batcher in self._batchers.values():
                    batcher.close()
                for endpoint in self.endpoints.values():
                    endpoint.pipeline.close()  # e.g. fold what was decided into features
                with contextlib.suppress(Exception):
                    await send({"type": "lifespan.shutdown.complete"})
                return
