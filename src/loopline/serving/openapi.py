"""The OpenAPI 3.1 document of a service, built from its endpoints' msgspec types (the
single source of both validation and schema)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from loopline.serving.endpoint import Endpoint
from loopline.serving.problems import Problem

ERRORS = (
    (400, "malformed JSON"),
    (401, "missing or unknown API key"),
    (403, "key lacks the scope"),
    (413, "body too large"),
    (422, "a field is invalid (named in the body)"),
    (429, "over the key's rate limit: retry after the Retry-After seconds"),
    (503, "overloaded: retry after the Retry-After seconds"),
)


def openapi_document(
    title: str, endpoints: Sequence[Endpoint], lookups: Sequence[str] = ()
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the endpoints, the kernel's routes and the ``GET
    <prefix>{key}`` lookups (their answers' schemas are the application's)."""
    types: list[type] = [Problem]
    for e in endpoints:
        types += [e.request, e.response, e.chunk or e.response]
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    problem, rest = schemas[0], schemas[1:]
    errors = {
        str(code): {"description": text, "content": {"application/json": {"schema": problem}}}
        for code, text in ERRORS
    }
    paths: dict[str, Any] = {}
    for i, e in enumerate(endpoints):
        request, response, chunk = rest[3 * i : 3 * i + 3]
        if e.stream:
            content = {"text/event-stream": {"schema": response}}
        elif e.stream_field is not None:
            content = {"application/json": {"schema": response},
                       "text/event-stream": {"schema": chunk}}  # fmt: skip
        else:
            content = {"application/json": {"schema": response}}
        paths[e.path] = {
            "post": {
                "summary": e.summary,
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 128},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": request}},
                },
                "responses": {
                    "200": {
                        "description": _answer(e),
                        "content": content,
                    },
                    **errors,
                },
                "security": [{"apiKey": []}, {"bearer": []}],
            }
        }
    paths |= {
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
    }
    key = {"name": "key", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"}}  # fmt: skip
    for prefix in lookups:
        paths[f"{prefix}{{key}}"] = {
            "get": {
                "summary": "What is kept under a key (a job's answer, say)",
                "parameters": [key],
                "responses": {
                    "200": {"description": "the answer kept, as JSON"},
                    "404": {"description": "nothing kept under that key for this caller"},
                },
                "security": [{"apiKey": []}, {"bearer": []}],
            }
        }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def _answer(e: Endpoint) -> str:
    if e.stream:
        return "the answer (Server-Sent Events)"
    if e.stream_field is not None:
        return f"the answer; Server-Sent Events of chunks when '{e.stream_field}' is true"
    return "the answer"
