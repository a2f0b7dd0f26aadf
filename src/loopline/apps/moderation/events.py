"""The moderation application's events, on the event log:

- ``moderation.verdicts``: a review's final verdict on an item (the labels the feedback
  stage joins to the prediction log: :class:`VerdictLabels`); records that do not decode
  go to ``moderation.verdicts.dlq``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from msgspec import Meta

from loopline.apps.moderation.taxonomy import LABELS
from loopline.events import Codec, DeadLetterQueue, Event, Record, decode_or_dead_letter
from loopline.predictions import Label

VERDICTS = "moderation.verdicts"
Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
TimeMs = Annotated[int, Meta(ge=946_684_800_000, le=4_102_444_800_000)]  # 2000 to 2100


class Verdict(Event, frozen=True, kw_only=True):
    """The final label of content ``item`` (a category, or ``benign``), from ``reviews``
    verdicts; ``appeal``: it came from an appeal, and supersedes what came before."""

    v: int = 1
    item: Id
    label: Literal["harassment", "hate", "sexual", "violence", "self_harm", "spam", "benign"]
    reviews: Annotated[int, Meta(ge=1, le=10)]
    appeal: bool = False
    event_time_ms: TimeMs


VERDICT_CODEC = Codec(Verdict)


class VerdictLabels:
    """Verdicts as labels, one per label a verdict can give: 1 for its label, 0 for the
    others, the latest winning, so an appeal that overturns a verdict clears the old
    label."""

    def __init__(self, dlq: DeadLetterQueue) -> None:
        self.dlq = dlq

    def __call__(self, records: Sequence[Record]) -> list[Label]:
        return [
            Label(v.item, float(v.label == subject), v.event_time_ms, subject=subject)
            for _, v in decode_or_dead_letter(records, VERDICT_CODEC, self.dlq)
            for subject in LABELS
        ]
