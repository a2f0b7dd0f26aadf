"""The scoring API's request and response bodies, their validation, and the OpenAPI
document built from them (msgspec types are the single source of both)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

Money = Annotated[float, Meta(gt=0, le=1_000_000, description="Amount in major units.")]
Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:|-]+$")]


class ScoreRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A card transaction to decide on. Give ``card_token`` or, at the edge only,
    ``card_number`` (tokenized at once, never stored). A CVV is refused."""

    transaction_id: Id
    amount: Money
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]
    channel: Literal["cp", "cnp"]
    customer_id: Id
    terminal_id: Id
    merchant_category: Annotated[str, Meta(min_length=1, max_length=32)]
    card_token: Id | None = None
    card_number: Annotated[str, Meta(pattern=r"^[0-9]{13,19}$")] | None = None
    event_time_ms: (
        Annotated[int, Meta(ge=0, le=4_102_444_800_000, description="ms since 1970, before 2100")]
        | None
    ) = None
    device_id: Id | None = None
    latitude: Annotated[float, Meta(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Meta(ge=-180, le=180)] | None = None
    cvv: str | None = None  # declared only so that it can be refused by name


class Reason(msgspec.Struct, frozen=True):
    """Why: a rule that fired, or a feature pushing the score up (its path attribution in
    log-odds: :mod:`loopline.serving.explain`)."""

    kind: Literal["rule", "feature"]
    name: str
    value: float | None = None


class ScoreResponse(msgspec.Struct, frozen=True, kw_only=True):
    transaction_id: str
    decision: Literal["approve", "review", "decline"]
    score: float
    reasons: list[Reason]
    model_version: str
    rules_version: str
    trace_id: str
    timings_ms: dict[str, float]
    degraded: list[str] = []
    replayed: bool = False


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """An error: what is wrong, with which field and value, and how to fix it."""

    error: str
    field: str | None = None
    detail: str | None = None


_AT = re.compile(r" - at `\$\.?([^`]*)`$")


class RequestError(Exception):
    """A bad request: becomes a 4xx with a :class:`Problem` body."""

    def __init__(self, status: int, problem: Problem) -> None:
        super().__init__(problem.error)
        self.status = status
        self.problem = problem


_decoder = msgspec.json.Decoder(ScoreRequest)


def decode_request(body: bytes) -> ScoreRequest:
    """Decode and check a score request; raise :class:`RequestError` naming the field."""
    try:
        request = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _AT.search(text)
        field = match.group(1) if match else None
        message = _AT.sub("", text)
        if "Object contains unknown field" in message:
            raise RequestError(
                422,
                Problem(error=message, field=field, detail="Remove the field; see /openapi.json."),
            ) from None
        raise RequestError(
            422,
            Problem(
                error=f"Invalid '{field}': {message}", field=field, detail="See /openapi.json."
            ),
        ) from None
    except msgspec.DecodeError as exc:
        raise RequestError(400, Problem(error=f"Body is not valid JSON: {exc}")) from None
    if request.cvv is not None:
        raise RequestError(
            422,
            Problem(
                error="A CVV must never be sent to the fraud service (PCI DSS 3.2).",
                field="cvv",
                detail="Remove 'cvv' from the request; it is not stored or needed.",
            ),
        )
    if (request.card_token is None) == (request.card_number is None):
        raise RequestError(
            422,
            Problem(
                error="Give exactly one of 'card_token' and 'card_number'.",
                field="card_token",
                detail="Send 'card_number' only from the edge; everything else uses the token.",
            ),
        )
    return request


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the service."""
    (request, response, problem), components = msgspec.json.schema_components(
        [ScoreRequest, ScoreResponse, Problem], ref_template="#/components/schemas/{name}"
    )
    errors = {
        str(code): {
            "description": text,
            "content": {"application/json": {"schema": problem}},
        }
        for code, text in (
            (400, "malformed JSON"),
            (401, "missing or unknown API key"),
            (403, "key lacks the scope"),
            (413, "body too large"),
            (422, "a field is invalid (named in the body)"),
            (503, "overloaded: retry after the Retry-After seconds"),
        )
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "loopline fraud decisions", "version": "1"},
        "paths": {
            "/v1/score": {
                "post": {
                    "summary": "Decide on one transaction",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 128},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": request}},
                    },
                    "responses": {
                        "200": {
                            "description": "the decision",
                            "content": {"application/json": {"schema": response}},
                        },
                        **errors,
                    },
                    "security": [{"apiKey": []}],
                }
            },
            "/livez": {"get": {"responses": {"200": {"description": "the process is up"}}}},
            "/readyz": {
                "get": {
                    "responses": {
                        "200": {"description": "models loaded and warm"},
                        "503": {"description": "not ready yet"},
                    }
                }
            },
            "/metrics": {"get": {"responses": {"200": {"description": "Prometheus metrics"}}}},
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }
