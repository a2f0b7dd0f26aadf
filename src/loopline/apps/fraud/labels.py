"""The fraud application's late labels: chargebacks (fraud) and closed dispute windows
(genuine), arriving on the ``labels`` topic days after their transactions."""

from __future__ import annotations

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
        while self.worker is not None and self.worker.run_once():
            pass
        return self.feed.run_once()
