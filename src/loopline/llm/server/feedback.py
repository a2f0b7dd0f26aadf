"""``POST /v1/feedback``: a user's thumbs up or down on a completion, or a preference
between two answers to one prompt.

Each is published on the ``llm.feedback`` topic once it is durable in the prediction
log; the label feed writes it beside the completion it names, as a label whose subject
says what it is: ``rating:<choice>`` (1 up, 0 down), or
``over:<choice>:<other id>:<other choice>`` (1: this choice beat that one).
:mod:`loopline.llm.feedback.dataset` reads them back, joined to the completions, as
training examples. A feedback record that does not decode is dead-lettered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from loopline.events import Codec, DeadLetterQueue, Event, Record, decode_or_dead_letter
from loopline.llm.server.api import Choice, CompletionId, FeedbackRequest, FeedbackResponse
from loopline.predictions import Label
from loopline.serving import Prediction, Routing

TOPIC = "llm.feedback"


class Feedback(Event, frozen=True, kw_only=True):
    """A verdict on choice ``choice`` of completion ``id``: ``rating`` 1 (up) or 0
    (down), or preferred over ``other``'s ``other_choice``."""

    v: int = 1
    id: CompletionId
    choice: Choice = 0
    rating: Annotated[int, Meta(ge=0, le=1)] | None = None
    other: CompletionId | None = None
    other_choice: Choice = 0
    event_time_ms: Annotated[int, Meta(ge=0)]


CODEC = Codec(Feedback)


def labels(records: Sequence[Record], dlq: DeadLetterQueue) -> list[Label]:
    """Feedback records as labels of the completions they name."""
    out = []
    for _, f in decode_or_dead_letter(records, CODEC, dlq):
        if f.rating is not None:
            out.append(Label(f.id, float(f.rating), f.event_time_ms, subject=f"rating:{f.choice}"))
        elif f.other is not None:
            subject = f"over:{f.choice}:{f.other}:{f.other_choice}"
            out.append(Label(f.id, 1.0, f.event_time_ms, subject=subject))
    return out


class FeedbackPipeline:
    """Takes feedback; ``publish`` gets each (encoded) once it is durable."""

    def __init__(
        self, publish: Callable[[Sequence[bytes]], None], clock: Callable[[], float] = time.time
    ) -> None:
        self.publish, self.clock = publish, clock

    def request_id(self, request: FeedbackRequest) -> str:
        other = request.preferred_over
        tail = f"{request.rating}" if other is None else f"{other.id}:{other.choice}"
        return f"feedback:{request.id}:{request.choice}:{tail}"

    def fingerprint(self, request: FeedbackRequest) -> Any:
        return msgspec.to_builtins(request)

    def predict_many(
        self, requests: Sequence[FeedbackRequest], trace_ids: Sequence[str], routing: Routing
    ) -> list[Prediction[FeedbackResponse]]:
        now = int(self.clock() * 1000)
        out = []
        for r in requests:
            other = r.preferred_over
            rating = None if r.rating is None else int(r.rating == "up")
            event = Feedback(
                id=r.id, choice=r.choice, rating=rating,
                other=None if other is None else other.id,
                other_choice=0 if other is None else other.choice, event_time_ms=now,
            )  # fmt: skip
            out.append(
                Prediction(
                    response=FeedbackResponse(id=r.id, logged=True),
                    request_id=self.request_id(r),
                    routing_key=r.id,
                    model_version="feedback",
                    arm="feedback",  # not a model's answer: the canary guard skips it
                    inputs=msgspec.to_builtins(r),
                    outputs={},
                    outcome=r.rating or "preference",
                    state=CODEC.encode(event),
                )
            )
        return out

    def committed(self, prediction: Prediction[FeedbackResponse]) -> None:
        self.publish([prediction.state])

    def close(self) -> None:
        pass
