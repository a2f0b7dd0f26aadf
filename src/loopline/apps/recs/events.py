"""The recommendation application's events, on the event log:

- ``recs.interactions``: a user rated, watched or clicked an item, with the item's genre
  vector (what the online features learn from: :mod:`loopline.apps.recs.features`);
  hostile or malformed records go to ``recs.interactions.dlq``;
- ``recs.impressions``: a page shown (one record per answer, its items in order);
- ``recs.clicks``: a click on a shown item (the labels: :func:`click_labels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from msgspec import Meta

from loopline.events import Codec, DeadLetterQueue, Event, Record, decode_or_dead_letter
from loopline.predictions import Label

INTERACTIONS, IMPRESSIONS, CLICKS = "recs.interactions", "recs.impressions", "recs.clicks"
GENRES = 19  # MovieLens's genres: the length of an interaction's genre vector
Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
TimeMs = Annotated[int, Meta(ge=946_684_800_000, le=4_102_444_800_000)]  # 2000 to 2100
# MovieLens-100K's ratings are from 1997-1998: its history replays as interactions
InteractionTimeMs = Annotated[int, Meta(ge=788_918_400_000, le=4_102_444_800_000)]  # 1995 on
# the catalogue's ids are decimal integers, and the list features hold items as numbers
ItemNumber = Annotated[str, Meta(min_length=1, max_length=15, pattern=r"^[0-9]+$")]
Genres = Annotated[
    tuple[Annotated[float, Meta(ge=0, le=1)], ...], Meta(min_length=GENRES, max_length=GENRES)
]


class Interaction(Event, frozen=True, kw_only=True):
    """A user's interaction with an item: a rating (1-5), or a click without one. ``genres``
    is the item's 0/1 genre vector (None: not known to the producer; the item still
    counts among the user's recent items, not in the genre counts)."""

    v: int = 1
    user: Id
    item: ItemNumber
    event_time_ms: InteractionTimeMs
    rating: Annotated[float, Meta(ge=1, le=5)] | None = None
    clicked: bool = False
    genres: Genres | None = None


class Impression(Event, frozen=True, kw_only=True):
    """A page shown: its items in order and what answered."""

    v: int = 1
    request_id: Id
    user: Id
    items: Annotated[list[Id], Meta(max_length=50)]
    sources: Annotated[list[str], Meta(max_length=50)]
    model_version: str
    embedding_version: str | None
    event_time_ms: TimeMs


class Click(Event, frozen=True, kw_only=True):
    """A click on ``item``, shown at ``position`` of page ``request_id``."""

    v: int = 1
    request_id: Id
    user: Id
    item: Id
    position: Annotated[int, Meta(ge=0, lt=50)]
    event_time_ms: TimeMs


INTERACTION_CODEC = Codec(Interaction)
IMPRESSION_CODEC = Codec(Impression)
CLICK_CODEC = Codec(Click)


class ClickLabels:
    """Clicks as labels: relevance 1 for the clicked item of its page; records that do
    not decode are dead-lettered."""

    def __init__(self, dlq: DeadLetterQueue) -> None:
        self.dlq = dlq

    def __call__(self, records: Sequence[Record]) -> list[Label]:
        return [
            Label(c.request_id, 1.0, c.event_time_ms, subject=c.item)
            for _, c in decode_or_dead_letter(records, CLICK_CODEC, self.dlq)
        ]
