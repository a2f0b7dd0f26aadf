"""What an application plugs into the serving kernel: its endpoints, each with its
request and response types and its pipeline, and the :class:`Prediction` a pipeline
returns for each request.

A :class:`Pipeline` answers requests in batches (the kernel batches what arrives in one
turn of the event loop); its ``predict_many`` may be a coroutine function, for a model
call that awaits. A :class:`StreamingPipeline` answers one request as a stream of
chunks, sent to the caller as Server-Sent Events while it runs (token by token, say).
Each pipeline picks its models from the :class:`~loopline.serving.routing.Routing` it
is handed (one snapshot per batch) by its requests' routing keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import msgspec

from loopline.exceptions import ConfigError
from loopline.predictions import Row

if TYPE_CHECKING:
    from loopline.serving.routing import Routing

_json = msgspec.json.Encoder()
Req = TypeVar("Req", contravariant=True)
Resp = TypeVar("Resp")


@dataclass(slots=True)
class Prediction(Generic[Resp]):
    """One answer and what the prediction log and the metrics keep of it.

    Attributes:
        response: What the caller gets (a msgspec Struct, encoded as JSON).
        request_id: The request's own id (the idempotency key by default).
        routing_key: What routed it (the canary share is a stable hash of it).
        model_version: The label of the model that answered (``rules-only`` where
            none did).
        arm: ``champion`` or ``challenger``.
        inputs: The model's inputs as logged (JSON-able).
        outputs: What it answered as logged (JSON-able): what labels are later
            judged against (see :mod:`loopline.tasks`).
        outcome: The answer in a word, counted by the metrics (a decision, a class).
        positive: Whether the answer acted (flagged, blocked, escalated): the canary
            guard compares the share of these between arms.
        degraded: Why the answer is not the full one, in the kernel's words
            (``model_fallback``, ``previous_model``, ``model_error:<label>``, ...) and
            the application's.
        timings_ms: Time per stage (``model`` among them).
        shadow_model: The challenger that scored it in shadow, if one did.
        shadow_outputs: The challenger's outputs (None where it failed).
        shadow_positive: Whether (the champion's model alone, the challenger's) would
            have acted on it, for the guard's expected ratio.
        columns: The values of the application's declared prediction-log columns.
        state: The pipeline's own, handed back to ``committed`` (e.g. what to learn).
    """

    response: Resp
    request_id: str
    routing_key: str
    model_version: str
    arm: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    outcome: str = ""
    positive: bool = False
    degraded: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    shadow_model: str | None = None
    shadow_outputs: dict[str, Any] | None = None
    shadow_positive: tuple[bool, bool] | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    state: Any = None

    def row(self, key: str, fingerprint: str, decided_ms: int, body: bytes) -> Row:
        """The prediction log's row (``body``: the response as sent)."""
        shadow = None if self.shadow_outputs is None else _json.encode(self.shadow_outputs)
        return Row(
            key, self.request_id, fingerprint, decided_ms, self.routing_key,
            self.model_version, self.arm, _json.encode(self.inputs), _json.encode(self.outputs),
            body, self.shadow_model, shadow, self.columns,
        )  # fmt: skip


class Pipeline(Protocol[Req, Resp]):
    """An application's request path, batch at a time."""

    def request_id(self, request: Req) -> str:
        """The request's own id: its idempotency key unless the caller sends one."""
        ...

    def fingerprint(self, request: Req) -> Any:
        """What identifies the request's content (JSON-able; hashed): a key reused with
        other content is refused. Keep secrets out of it (hash their tokens instead)."""
        ...

    def predict_many(
        self, requests: Sequence[Req], trace_ids: Sequence[str], routing: Routing
    ) -> list[Prediction[Resp]] | Awaitable[list[Prediction[Resp]]]:
        """One prediction per request, in order."""
        ...

    def committed(self, prediction: Prediction[Resp]) -> None:
        """Called once a prediction is durable in the log (e.g. learn from it)."""
        ...

    def close(self) -> None:
        """The service is stopping: finish what is pending."""
        ...


class StreamingPipeline(Protocol[Req, Resp]):
    """An application's request path for answers streamed while they are made."""

    def request_id(self, request: Req) -> str: ...

    def fingerprint(self, request: Req) -> Any: ...

    async def stream(
        self,
        request: Req,
        trace_id: str,
        routing: Routing,
        emit: Callable[[Any], Awaitable[None]],
    ) -> Prediction[Resp]:
        """Answer ``request``, calling ``emit`` with each chunk (a msgspec Struct or
        JSON-able value) as it is ready; return the whole answer for the log. Cancelled
        when the caller goes away."""
        ...

    def committed(self, prediction: Prediction[Resp]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A ``POST`` route of the service.

    Args:
        path: The route, e.g. ``/v1/score``.
        request: Its body's type (a msgspec Struct: validation and the OpenAPI schema).
        response: Its answer's type (for a stream: each chunk's).
        pipeline: A :class:`Pipeline`, or a :class:`StreamingPipeline` with ``stream``.
        stream: Answer as Server-Sent Events.
        stream_field: The request's boolean field that asks for a stream (OpenAI's
            ``stream``): with it false, a streaming pipeline's answer comes whole, as
            one JSON body (``response``), once it is done.
        chunk: With ``stream_field``, the type of each streamed chunk.
        scope: The API-key scope it needs.
        max_body_bytes: The largest body accepted (413 beyond it): raise it for routes
            that take images or audio.
        check: The application's own checks of a decoded request (raise
            :class:`~loopline.serving.problems.RequestError` naming the field).
        offload: Decide batches on a thread of their own, one at a time (for a
            pipeline that only reads a remote store: the event loop goes on meanwhile).
        summary: One line for the OpenAPI document.
        detail_fields: Fields of the answer that only callers with the ``detail``
            scope see (exact scores, attributions); others get them as null.
        pan_fields: Request fields allowed to hold a primary account number (the
            pipeline tokenizes them at once); any other string field, and the
            Idempotency-Key, holding one is refused (PCI DSS 3.3-3.5: none is stored).
    """

    path: str
    request: type
    response: type
    pipeline: Any
    stream: bool = False
    stream_field: str | None = None
    chunk: type | None = None
    scope: str = "score"
    max_body_bytes: int = 16 * 1024
    check: Callable[[Any], None] | None = None
    offload: bool = False
    summary: str = ""
    detail_fields: tuple[str, ...] = ()
    pan_fields: tuple[str, ...] = ()
    decoder: msgspec.json.Decoder[Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or self.path.startswith(("/admin/", "/monitor")):
            raise ConfigError(
                f"Endpoint path {self.path!r} must start with '/' and not with /admin/ or "
                "/monitor (the kernel's own routes)."
            )
        if self.stream_field is not None and (
            self.stream or self.stream_field not in getattr(self.request, "__struct_fields__", ())
        ):
            raise ConfigError(
                f"Endpoint {self.path}: stream_field must name a field of its request, and "
                "not be given with stream=True (always streamed)."
            )
        if self.max_body_bytes <= 0:
            raise ConfigError(f"Endpoint {self.path}: max_body_bytes must be positive.")
        object.__setattr__(self, "decoder", msgspec.json.Decoder(self.request))

    @property
    def streams(self) -> bool:
        """Whether its pipeline streams (always, or when a request asks)."""
        return self.stream or self.stream_field is not None
