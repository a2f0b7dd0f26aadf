"""The users' online features: each user's last ``n`` items (a list feature) and their
per-genre interaction counts (a vector feature), fed by the ``recs.interactions`` topic
and by the service's own clicks.

The feature engine (:mod:`loopline.features`) has no list or vector aggregation yet,
so they live in a bounded in-process store: the ``max_users`` most recently active
users, each with at most ``n`` items. It is rebuilt from the topic at start (the feed
reads from the first offset), so it holds nothing the log does not.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from loopline.apps.recs.events import INTERACTION_CODEC, INTERACTIONS
from loopline.events import DeadLetterQueue, EventLog, TopicPartition, decode_or_dead_letter
from loopline.exceptions import TopicNotFoundError

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


class UserState:
    """Per user: the last ``n`` items (newest first) and genre counts; bounded."""

    def __init__(self, *, genres: int, n: int = 20, max_users: int = 100_000) -> None:
        self.genres, self.n, self.max_users = genres, n, max_users
        self._recent: OrderedDict[str, tuple[deque[int], F32]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, user: str, item: int, genres: F32 | None = None) -> None:
        """``user`` interacted with ``item`` (of ``genres``, a 0/1 vector)."""
        with self._lock:
            if user in self._recent:
                items, counts = self._recent.pop(user)
            else:
                items, counts = deque(maxlen=self.n), np.zeros(self.genres, dtype=np.float32)
            if item in items:
                items.remove(item)
            items.appendleft(item)
            if genres is not None and len(genres) == self.genres:
                counts = counts + genres
            self._recent[user] = (items, counts)
            while len(self._recent) > self.max_users:
                self._recent.popitem(last=False)

    def recent(self, user: str) -> I64:
        """The user's last items, newest first (empty for a user not seen)."""
        with self._lock:
            found = self._recent.get(user)
            return np.asarray(list(found[0]) if found else [], dtype=np.int64)

    def genre_counts(self, user: str) -> F32 | None:
        with self._lock:
            found = self._recent.get(user)
            return None if found is None else found[1].copy()

    def __len__(self) -> int:
        return len(self._recent)


class InteractionFeed:
    """Reads ``recs.interactions`` into a :class:`UserState`; records that do not
    decode go to its dead-letter topic; items unknown to ``item_index`` are counted and
    skipped (an item newer than the model)."""

    def __init__(
        self,
        log: EventLog,
        state: UserState,
        item_index: Mapping[str, int],
        genres: F32,
        *,
        topic: str = INTERACTIONS,
        max_records: int = 5000,
    ) -> None:
        try:
            log.partitions(topic)
        except TopicNotFoundError:
            log.create_topic(topic, partitions=1)
        self.log, self.state, self.topic = log, state, topic
        self.item_index, self.genres, self.max_records = item_index, genres, max_records
        self.dlq = DeadLetterQueue(log, topic)
        self.offsets: dict[int, int] = {}
        self.unknown_items = 0

    def run_once(self) -> int:
        """Take in what has arrived; return how many records were read."""
        read = 0
        for p in range(self.log.partitions(self.topic)):
            tp = TopicPartition(self.topic, p)
            while records := self.log.read(
                tp, self.offsets.get(p, 0), max_records=self.max_records
            ):
                for _, event in decode_or_dead_letter(records, INTERACTION_CODEC, self.dlq):
                    item = self.item_index.get(event.item)
                    if item is None:
                        self.unknown_items += 1
                        continue
                    self.state.add(event.user, item, self.genres[item])
                self.offsets[p] = records[-1].offset + 1
                read += len(records)
        return read
