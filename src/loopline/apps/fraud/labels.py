"""The fraud application's late labels: chargebacks (fraud) and closed dispute windows
(genuine), arriving on the ``labels`` topic days after their transactions."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec

from loopline.apps.fraud.events import Label
from loopline.events import EventLog, Record
from loopline.features import FeatureWorker, OnlineEngine
from loopline.feedback import LabelFeed
from loopline.predictions import Label as KnownLabel
from loopline.predictions import Log

LABELS = "labels"  # late labels (chargebacks, closed disputes): Label events


def decode_labels(records: Sequence[Record]) -> list[KnownLabel]:
    """The prediction log's labels from the ``labels`` topic's Label events (a
    chargeback: 1; a closed dispute window: 0)."""
    out = []
    for r in records:
        d = msgspec.json.decode(r.value)
        value = 1.0 if float(d["is_fraud"]) >= 0.5 else 0.0
        out.append(KnownLabel(d["transaction_id"], value, int(d["label_time_ms"])))
    return out


class FraudLabels:
    """Late labels from the ``labels`` topic into the online features (terminal risk, by
    a feature worker, offsets with the features; unless ``features`` is False: feature
    workers own them) and into the prediction log's labels (offsets with the labels; a
    chargeback wins over a closed dispute window)."""

    def __init__(
        self, engine: OnlineEngine, log: EventLog, outcomes: Log, *, features: bool = True
    ) -> None:
        self.feed = LabelFeed(log, outcomes, topic=LABELS, decode=decode_labels, keep="max")
        self.worker = (
            FeatureWorker(engine=engine, log=log, topic=LABELS, schema=Label) if features else None
        )

    def run_once(self) -> int:
        """Take in what has arrived; return how many labels the log read."""
        self.features_once()
        return self.feed.run_once()

    def features_once(self) -> None:
        """Take what has arrived into the online features (if this feeds them)."""
        while self.worker is not None and self.worker.run_once():
            pass

    async def step(self, *, offload: bool) -> int:
        """:meth:`run_once` for a service's event loop: the features there (the engine
        is the loop's), then the prediction log's labels, on a worker thread where
        ``offload`` (a remote log's transaction can wait seconds on another scorer's
        lock); one after the other, so the topic is never read from two threads."""
        self.features_once()
        return await asyncio.to_thread(self.feed.run_once) if offload else self.feed.run_once()
