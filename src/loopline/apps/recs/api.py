"""The recommendation service's request and response bodies (msgspec types: the single
source of validation and the OpenAPI schema), and the checks a schema cannot express."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from loopline.serving import refuse

Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Source = Literal["embedding", "cooccurrence", "popularity", "explore"]
MAX_SESSION = 50  # a session's clicks the service reads (the newest first)
MAX_EXCLUDE = 200


class Context(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where and when the page is shown; ``age`` and ``gender`` place a new user in a
    segment (age band x gender) for cold-start popularity."""

    surface: Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")] = "home"
    hour: Annotated[int, Meta(ge=0, le=23)] | None = None
    age: Annotated[int, Meta(ge=1, le=120)] | None = None
    gender: Literal["F", "M"] | None = None


class RecommendRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A page of ``k`` items for ``user``: an id the service has not seen is a new user.
    ``session``: items clicked in this session, newest first; ``exclude``: items not to
    show."""

    request_id: Id
    user: Id
    context: Context | None = None
    k: Annotated[int, Meta(ge=1, le=50)] = 10
    session: Annotated[list[Id], Meta(max_length=MAX_SESSION)] = []
    exclude: Annotated[list[Id], Meta(max_length=MAX_EXCLUDE)] = []


class RecommendResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The page, best first; ``sources[i]`` says where ``items[i]`` came from.
    ``embedding_version`` is the vector index's version that answered (null when it
    was down)."""

    request_id: str
    items: list[str]
    sources: list[Source]
    model_version: str
    embedding_version: str | None
    degraded: list[str] = []
    replayed: bool = False


class FeedbackRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A click on ``item``, shown at ``position`` (0-based) of recommendation
    ``request_id`` to ``user``."""

    request_id: Id
    user: Id
    item: Id
    position: Annotated[int, Meta(ge=0, lt=50)]
    event_time_ms: Annotated[int, Meta(ge=0, le=4_102_444_800_000)] | None = None


class FeedbackResponse(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    item: str
    logged: bool
    replayed: bool = False


def check(request: RecommendRequest) -> None:
    """Refuse a session that repeats an item (a client bug that would skew the query)."""
    if len(set(request.session)) != len(request.session):
        raise refuse(422, "'session' repeats an item.", field="session",
                     detail="Send each clicked item once, newest first.")  # fmt: skip
