"""What the kernel checks of every request before a pipeline sees it, and hides of every
answer from a caller who may not see it: primary account numbers where none may be
(PCI DSS 3.3-3.5: a request's fields are logged, published and stored), idempotency
keys, and the ``detail`` fields of an answer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from loopline.privacy import looks_like_pan
from loopline.serving.problems import RequestError, refuse

_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:|-]{1,128}$")
_json = msgspec.json.Encoder()


def screen(request: Any, allowed: Sequence[str]) -> None:
    """Refuse a request with a primary account number in any string field but
    ``allowed`` (a 422 naming the field)."""
    if not isinstance(request, msgspec.Struct):
        return
    values = msgspec.structs.astuple(request)
    texts = [v for v in values if type(v) is str]
    for v in values:
        if type(v) is list:
            texts += [t for t in v if type(t) is str]
    if not looks_like_pan("\x00".join(texts)):
        return  # one scan of every field at once (allowed ones too): the common case
    for name, v in zip(request.__struct_fields__, values, strict=True):
        if name not in allowed and any(
            type(t) is str and looks_like_pan(t) for t in (v if type(v) is list else (v,))
        ):
            raise _holds_pan(name)


def idempotency_key(given: str | None, request_id: str) -> str:
    """The request's idempotency key: the caller's ``Idempotency-Key`` (checked), else
    its own request id."""
    if given is not None and not _IDEMPOTENCY_KEY.match(given):
        raise refuse(
            422, "Idempotency-Key must be 1-128 of A-Z a-z 0-9 _ . : | -.",
            field="Idempotency-Key",
        )  # fmt: skip
    key = given or request_id
    if len(key) > 128:
        raise refuse(422, "Idempotency-Key is longer than 128 characters.", field="Idempotency-Key")
    if given is not None and looks_like_pan(given):
        raise _holds_pan("Idempotency-Key")
    return key


def visible(hidden: Sequence[str], response: Any, body: bytes) -> bytes:
    """The answer with the ``hidden`` fields null: ``response`` (a Struct), or else
    ``body`` (a replayed answer, as stored)."""
    nulls = dict.fromkeys(hidden)
    if isinstance(response, msgspec.Struct):
        return _json.encode(msgspec.structs.replace(response, **nulls))
    answer = msgspec.json.decode(body)
    return _json.encode({**answer, **nulls} if isinstance(answer, dict) else answer)


def _holds_pan(field: str) -> RequestError:
    return refuse(
        422,
        f"'{field}' holds what looks like a primary account number (13-19 digits that "
        "pass the Luhn check); none may be stored.",
        field=field,
        detail="Send an opaque id or a token instead.",
    )
