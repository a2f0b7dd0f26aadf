"""The fraud service's request and response bodies (msgspec types: the single source of
validation and the OpenAPI schema), and the checks a schema cannot express."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from loopline.serving import refuse
from loopline.units import MINUTE_MS

Money = Annotated[float, Meta(gt=0, le=1_000_000, description="Amount in major units.")]
Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:|-]+$")]
Decision = Literal["approve", "review", "decline"]


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
    log-odds: :mod:`loopline.models.explain`)."""

    kind: Literal["rule", "feature"]
    name: str
    value: float | None = None


class ScoreResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The decision. ``score`` and ``reasons`` are null for keys without the ``detail``
    scope: exact scores and attributions help an attacker probe the model."""

    transaction_id: str
    decision: Decision
    score: float | None
    reasons: list[Reason] | None
    model_version: str
    rules_version: str
    trace_id: str
    timings_ms: dict[str, float]
    degraded: list[str] = []
    replayed: bool = False


MAX_AHEAD_MS = 5 * MINUTE_MS  # how far ahead of the service's clock an event time may be


def checks(clock: Callable[[], float]) -> Callable[[ScoreRequest], None]:
    """:func:`check`, and an event time no further ahead of ``clock`` than
    :data:`MAX_AHEAD_MS` (one far in the future would be learned into the features)."""

    def checked(request: ScoreRequest) -> None:
        check(request)
        at = request.event_time_ms
        if at is not None and at > clock() * 1000 + MAX_AHEAD_MS:
            raise refuse(
                422,
                f"'event_time_ms' is {at} ms, more than {MAX_AHEAD_MS // MINUTE_MS} minutes "
                "ahead of the service's clock.",
                field="event_time_ms",
                detail="Send the transaction's own time (ms since 1970), or leave it out.",
            )

    return checked


def check(request: ScoreRequest) -> None:
    """Refuse a CVV, and anything but exactly one of card token and card number."""
    if request.cvv is not None:
        raise refuse(
            422,
            "A CVV must never be sent to the fraud service (PCI DSS 3.2).",
            field="cvv",
            detail="Remove 'cvv' from the request; it is not stored or needed.",
        )
    if (request.card_token is None) == (request.card_number is None):
        raise refuse(
            422,
            "Give exactly one of 'card_token' and 'card_number'.",
            field="card_token",
            detail="Send 'card_number' only from the edge; everything else uses the token.",
        )
