"""The moderation service's request and response bodies (msgspec types: validation and the
OpenAPI schema), and the checks a schema cannot express (base64 that decodes, an image that
opens)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from loopline.serving import refuse

Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Region = Annotated[str, Meta(min_length=1, max_length=16, pattern=r"^[a-z]{2,8}$")]
MAX_PARTS = 8
MAX_TEXT = 20_000  # characters of one text part
MAX_BODY = 24 * 1024 * 1024  # base64 media: a minute of video or a long voice note
Label = Literal["harassment", "hate", "sexual", "violence", "self_harm", "spam", "benign"]


class Part(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One part of the content: ``text``, or ``data`` (base64) for an image (PNG, JPEG,
    WebP), audio (WAV, MP3, OGG, M4A) or a video (MP4, WebM)."""

    type: Literal["text", "image", "audio", "video"]
    text: Annotated[str, Meta(max_length=MAX_TEXT)] | None = None
    data: str | None = None


class ModerateRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Content to moderate. ``id``: the content's own id (answers and review verdicts are
    keyed by it); ``user``: its author (only a keyed hash of it is kept), for the repeat
    offenders' limit; ``region``: whose policy applies; ``reach``: how many people it
    would reach (the review queue weighs it). Audio and video are answered
    asynchronously: a ``pending`` answer at once, the decision by polling
    ``GET /v1/moderate/{id}`` or posted to ``callback_url`` (a public address)."""

    id: Id
    parts: Annotated[list[Part], Meta(min_length=1, max_length=MAX_PARTS)]
    user: Id | None = None
    region: Region = "default"
    reach: Annotated[int, Meta(ge=0, le=10_000_000_000)] = 0
    callback_url: Annotated[str, Meta(max_length=2048, pattern=r"^https?://")] | None = None


class Reason(msgspec.Struct, frozen=True, kw_only=True):
    category: str
    score: float
    threshold: float
    action: str


class ModerateResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The decision: ``action`` under ``region``'s policy ``policy_version``, the
    ``category``, ``score`` and ``rule`` that decided it, and every rule that fired
    (``reasons``); the fused ``scores``, the cascade ``stage`` that decided, the language
    found; ``review``: the review task's id and deadline when a person will look.
    ``status`` is ``pending`` for content still being analysed (poll for it)."""

    id: str
    status: Literal["done", "pending", "failed"]
    action: str | None = None
    category: str | None = None
    score: float | None = None
    rule: str | None = None
    region: str | None = None
    policy_version: str | None = None
    reasons: list[Reason] = []
    scores: dict[str, float] = {}
    stage: str | None = None
    language: str | None = None
    modalities: list[str] = []
    review_task: str | None = None
    review_deadline_ms: int | None = None
    model_version: str | None = None
    degraded: list[str] = []
    error: str | None = None
    replayed: bool = False


class ClaimRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A reviewer asks for the next task (``request_id``: this claim's own id)."""

    request_id: Id
    reviewer: Id
    senior: bool = False


class ClaimResponse(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    task: str | None = None
    item: str | None = None
    category: str | None = None
    score: float | None = None
    text: str | None = None  # what the reviewer reads (forgotten after the retention period)
    deadline_ms: int | None = None
    appeal: bool = False
    escalated: bool = False
    replayed: bool = False


class VerdictRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    request_id: Id
    task: Id
    reviewer: Id
    label: Label


class AppealRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The author contests the decision on content ``id``."""

    request_id: Id
    id: Id
    note: Annotated[str, Meta(max_length=2000)] = ""


class Ack(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    accepted: bool
    detail: str = ""
    replayed: bool = False


def media(part: Part, index: int) -> bytes:
    """The decoded bytes of a media part (422 naming the part when they are not base64)."""
    where = f"parts[{index}].data"
    if part.data is None:
        raise refuse(422, f"A {part.type} part needs 'data' (base64).", field=where)
    try:
        return base64.b64decode(part.data, validate=True)
    except (binascii.Error, ValueError):
        raise refuse(422, "Not valid base64.", field=where) from None


def check(request: ModerateRequest) -> None:
    """Each part carries what its type needs; an image's header says a size it may have
    (its pixels are decoded when read; audio and video are checked when analysed)."""
    from loopline.apps.moderation.media import image_size

    for i, part in enumerate(request.parts):
        if part.type == "text":
            if part.text is None or part.data is not None:
                raise refuse(422, "A text part carries 'text' only.", field=f"parts[{i}].text")
            if not part.text.strip():
                raise refuse(422, "A text part needs words.", field=f"parts[{i}].text")
            continue
        if part.text is not None:
            raise refuse(422, "A media part carries 'data' only.", field=f"parts[{i}].text")
        data = media(part, i)
        if part.type == "image":
            try:
                image_size(data)
            except ValueError as exc:
                raise refuse(
                    422, f"The image does not open: {exc}", field=f"parts[{i}].data"
                ) from None


def is_async(request: ModerateRequest) -> bool:
    return any(p.type in ("audio", "video") for p in request.parts)
