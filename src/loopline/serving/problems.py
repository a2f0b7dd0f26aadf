"""Errors a caller can fix, as HTTP answers: a :class:`Problem` body naming what is wrong,
in which field, and how to fix it, with a 4xx status (503 for overload). Only the
serving stage maps errors to statuses."""

from __future__ import annotations

import re
from typing import Any

import msgspec


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """An error: what is wrong, with which field and value, and how to fix it."""

    error: str
    field: str | None = None
    detail: str | None = None


class RequestError(Exception):
    """A refused request: becomes ``status`` with a :class:`Problem` body (and
    ``headers``, e.g. a ``retry-after`` that says when a rate limit lets it in)."""

    def __init__(
        self, status: int, problem: Problem, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(problem.error)
        self.status = status
        self.problem = problem
        self.headers = headers or []


def refuse(
    status: int, error: str, *, field: str | None = None, detail: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> RequestError:  # fmt: skip
    """A :class:`RequestError`, to raise."""
    return RequestError(status, Problem(error=error, field=field, detail=detail), headers)


_AT = re.compile(r" - at `\$\.?([^`]*)`$")


def decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    """Decode and validate ``body``; a bad body is a 400 (not JSON) or a 422 naming the
    field (msgspec's validation: types, bounds, patterns, unknown fields)."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _AT.search(text)
        field = match.group(1) if match else None
        message = _AT.sub("", text)
        if "Object contains unknown field" in message:
            raise refuse(
                422, message, field=field, detail="Remove the field; see /openapi.json."
            ) from None
        raise refuse(
            422, f"Invalid '{field}': {message}", field=field, detail="See /openapi.json."
        ) from None
    except msgspec.DecodeError as exc:
        raise refuse(400, f"Body is not valid JSON: {exc}") from None
