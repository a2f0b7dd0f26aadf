"""The recommender's user features, declared once with the feature engine
(:mod:`loopline.features`) and computed online for serving and offline for training rows.

One view, ``user``, over the ``recs.interactions`` topic (:class:`Interaction` events:
the user, the item, its genre vector), keyed by the user:

- ``genres_sum_360d``: the per-genre counts of the user's interactions (a vector
  feature, the sum of the 19 genre indicators) over 360 days in tiles of 30 days, so
  the window reaches 330 to 360 days back: all of MovieLens-100K (7 months, 1997-1998);
- ``item_id_last20_1h``: the session, the user's last 20 items within the hour, newest
  first (a list feature);
- ``item_id_last20_360d``: the user's last 20 items over the long window (what the page
  must not show again), from the same list state.

Online, a :class:`~loopline.features.FeatureWorker` feeds the topic into an
:class:`~loopline.features.OnlineEngine` (``derive=``:func:`interaction_columns`), and
:class:`UserFeatures` reads a user at request time (one read of the view). Offline,
:func:`history_of` turns the topic's records into a history and :func:`training_features`
computes the same features for training rows, each as of just before its interaction
(``tests/recs/test_features.py`` checks that the two agree).

Memory: per user, 12 tiles of 19 genre sums and a list ring of 20 entries, about 2.7 KB
(measured on MovieLens-100K); the embedded store releases the users idle for twice the
longest window (720 days) at each snapshot, so it follows the users active in that span.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from loopline.apps.recs.events import GENRES, INTERACTION_CODEC, INTERACTIONS, Interaction
from loopline.events import Record
from loopline.exceptions import SchemaError
from loopline.features import (
    Aggregation,
    Entity,
    FeatureSet,
    FeatureView,
    OnlineEngine,
    Source,
    days,
    hours,
)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

SESSION_ITEMS = 20
SESSION_MS, TASTE_MS = hours(1), days(360)
VIEW = "user"
GENRE_COUNTS = "genres_sum_360d"
SESSION = f"item_id_last{SESSION_ITEMS}_1h"
RECENT = f"item_id_last{SESSION_ITEMS}_360d"

SOURCE = Source(name="interactions", topic=INTERACTIONS, timestamp="event_time_ms")
USER = Entity(name="user", join_key="user")


def user_view() -> FeatureView:
    """The ``user`` view (a value: equal definitions have equal versions)."""
    return FeatureView(
        name=VIEW,
        entity=USER,
        source=SOURCE,
        allowed_lateness_ms=hours(1),  # a client's batch of interactions, sent late
        aggregations=(
            Aggregation(
                function="sum", column="genres", windows=(TASTE_MS,), hop=days(30), dim=GENRES
            ),
            Aggregation(
                function="last_n",
                column="item_id",
                windows=(SESSION_MS, TASTE_MS),
                n=SESSION_ITEMS,
            ),
        ),
    )


def recs_feature_set() -> FeatureSet:
    """The user features of a training row: the history strictly before its interaction
    (as served to the request that led to it)."""
    return FeatureSet(name="recs", views=(user_view(),), include_event=False)


def interaction_columns(columns: dict[str, npt.NDArray[np.generic]]) -> None:
    """The feature columns of a decoded batch of interactions (the worker's ``derive``):
    ``item_id``, the item's id as a number, and ``genres`` as (rows, 19) floats, NaN
    rows (no value) where an event has none."""
    columns["item_id"] = np.asarray(columns["item"]).astype(np.float64)
    genres = np.asarray(columns["genres"])
    if genres.ndim != 2:  # no event of the batch had a genre vector: strings of ""
        columns["genres"] = np.full((len(genres), GENRES), math.nan)


def history_of(records: Sequence[Record]) -> pa.Table:
    """The interactions topic's ``records`` (each partition's in offset order) as the
    offline engine's history: ``user``, ``event_time_ms``, ``item_id``, ``genres``
    (``DOUBLE[19]``, null where missing), the log positions (``_partition``,
    ``_offset``: late events are dropped as the worker dropped them, ties go to the
    later record) and ``_arrival_ms``, the newest event time of the partition so far (the
    log's clock: an event sent late is not seen before it arrived). Records that do not
    decode are left out (the worker dead-lettered them)."""
    rows: list[tuple[Record, Interaction]] = []
    for r in records:
        try:
            rows.append((r, INTERACTION_CODEC.decode(r.value)))
        except SchemaError:
            continue
    newest: dict[int, int] = {}
    arrival = []
    for r, e in rows:
        newest[r.partition] = max(newest.get(r.partition, e.event_time_ms), e.event_time_ms)
        arrival.append(newest[r.partition])
    genres = [list(e.genres) if e.genres is not None else None for _, e in rows]
    return pa.table(
        {
            "user": pa.array([e.user for _, e in rows], pa.string()),
            "event_time_ms": pa.array([e.event_time_ms for _, e in rows], pa.int64()),
            "item_id": pa.array([int(e.item) for _, e in rows], pa.int64()),
            "genres": pa.array(genres, pa.list_(pa.float64(), GENRES)),
            "_partition": pa.array([r.partition for r, _ in rows], pa.int64()),
            "_offset": pa.array([r.offset for r, _ in rows], pa.int64()),
            "_arrival_ms": pa.array(arrival, pa.int64()),
        }
    )


def training_features(history: pa.Table, spine: pa.Table) -> pa.Table:
    """The spine (interactions of ``history``: ``user``, ``event_time_ms``,
    ``_partition``, ``_offset``) with the user features each row's request was served:
    ``user__genres_sum_360d`` and the two lists, from the interactions before it."""
    return recs_feature_set().offline(history, spine)


@dataclass(frozen=True, slots=True)
class UserRead:
    """One user's features at request time.

    Attributes:
        genre_counts: Interactions per genre in the long window; None where there are none.
        session: The items of the session window, newest first, each once.
        recent: The last items of the long window, newest first, each once.
    """

    genre_counts: F32 | None
    session: list[str]
    recent: list[str]


class UserFeatures:
    """The ``user`` view read from ``engine`` (the service's, fed by its worker)."""

    def __init__(self, engine: OnlineEngine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine, self.clock = engine, clock

    def read_many(self, users: Sequence[str], as_of_ms: npt.ArrayLike) -> dict[str, F64]:
        """Feature name -> column (rows of 19 or 20 for the vector and the lists)."""
        return self.engine.read_many(VIEW, users, as_of_ms)

    def read_one(self, user: str, as_of_ms: int | None = None) -> UserRead:
        """``user``'s features at ``as_of_ms`` (default now): one read of the view."""
        t = int(self.clock() * 1000) if as_of_ms is None else as_of_ms
        found = self.read_many([user], [t])
        counts = found[GENRE_COUNTS][0]
        return UserRead(
            genre_counts=counts.astype(np.float32) if counts.any() else None,
            session=_ids(found[SESSION][0]),
            recent=_ids(found[RECENT][0]),
        )


def _ids(listed: F64) -> list[str]:
    """A list feature's item ids (NaN padding dropped, repeats kept once, in order)."""
    return list(dict.fromkeys(str(int(x)) for x in listed.tolist() if not math.isnan(x)))
