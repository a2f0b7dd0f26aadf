"""``loopline work fraud``: one feature worker of the scale-out profile.

Worker ``index`` of ``settings.workers`` owns the partitions ``p`` of the transactions
and labels topics with ``p % workers == index``, and is the only writer of their state
in the shared (Redis) online store: it applies each micro-batch and commits it with its
offsets in one transaction (see :mod:`loopline.features.redis`), so a worker killed at
any point and started again resumes exactly where its state stands. Scorers read every
partition's state; they never write it.
"""

from __future__ import annotations

import signal
import time
from types import FrameType

from loopline.apps.fraud.erasure import open_events
from loopline.apps.fraud.events import TRANSACTION_QUALITY, Label, Transaction
from loopline.apps.fraud.features import fraud_feature_set
from loopline.apps.fraud.labels import LABELS
from loopline.apps.fraud.service import card_device
from loopline.events import EventLog, TopicPartition
from loopline.exceptions import ConfigError
from loopline.features import FeatureWorker, OnlineEngine
from loopline.settings import Settings

TRANSACTIONS = "transactions"


def owned(settings: Settings, index: int) -> list[int]:
    """The partitions worker ``index`` owns."""
    if not 0 <= index < settings.workers:
        raise ConfigError(f"--index {index}: choose 0 to {settings.workers - 1}.")
    return [p for p in range(settings.partitions) if p % settings.workers == index]


def create_topics(log: EventLog, settings: Settings) -> None:
    """The transactions and labels topics with ``settings.partitions`` partitions."""
    for topic in (TRANSACTIONS, LABELS):
        log.create_topic(topic, partitions=settings.partitions)


def engine_of(settings: Settings, *, timeout_s: float = 5.0) -> OnlineEngine:
    """The fraud views on the shared online store."""
    if settings.features is None:
        raise ConfigError(
            "Feature workers need a shared online store: set features = redis://... "
            "(LOOPLINE_FEATURES), or run the embedded service, which learns by itself."
        )
    from loopline.features import RedisStore

    return OnlineEngine(
        views=fraud_feature_set().views, store=RedisStore(settings.features, timeout_s=timeout_s)
    )


def workers_of(engine: OnlineEngine, log: EventLog, partitions: list[int]) -> list[FeatureWorker]:
    return [
        FeatureWorker(engine=engine, log=log, topic=TRANSACTIONS, schema=Transaction,
                      partitions=partitions, quality=TRANSACTION_QUALITY, derive=card_device),
        FeatureWorker(engine=engine, log=log, topic=LABELS, schema=Label, partitions=partitions),
    ]  # fmt: skip


def lag(engine: OnlineEngine, log: EventLog, partitions: list[int]) -> int:
    """Records of ``partitions`` not yet in the online state (its committed offsets)."""
    engine.reload_checkpoints()  # what the workers committed, not a cached copy
    behind = 0
    for topic in (TRANSACTIONS, LABELS):
        for p in partitions:
            tp = TopicPartition(topic, p)
            behind += max(log.end_offset(tp) - engine.offset(tp), 0)
    return behind


def run(
    settings: Settings, index: int, *, idle_sleep_s: float = 0.02, idle_max_s: float = 0.1
) -> None:
    """Feed the owned partitions into the online store until SIGTERM or SIGINT.

    An empty round (nothing new on any owned partition) sleeps ``idle_sleep_s``, twice
    that after the next empty one, up to ``idle_max_s``: each round asks the broker for
    every partition's end offset, and on a quiet stream those polls were what kept the
    broker and the workers busy (measured on the scale demo). The first event after a
    quiet spell waits at most ``idle_max_s``; a busy stream never sleeps."""
    partitions = owned(settings, index)
    if settings.events is None:
        raise ConfigError("Feature workers read a shared event log: set events = kafka://...")
    log = open_events(settings.events, keys=settings.subject_keys or settings.decisions)
    engine = engine_of(settings)
    workers = workers_of(engine, log, partitions)
    stop = False

    def stopping(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    idle = idle_sleep_s
    try:
        while not stop:
            if sum(w.run_once() for w in workers):
                idle = idle_sleep_s
            else:
                time.sleep(idle)
                idle = min(2 * idle, idle_max_s)
    finally:
        engine.store.close()
        log.close()
