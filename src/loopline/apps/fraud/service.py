"""``loopline serve fraud``: the fraud decision service on embedded defaults.

It loads the registry's ``champion`` (pinned, checksums verified), keeps the fraud
features online in an embedded store under ``--state``, writes every decision to the
prediction log there, and publishes review and decline decisions to the
``fraud.notifications`` topic of the event log.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from loopline.apps.fraud.events import TRANSACTION_QUALITY, Label, Transaction
from loopline.apps.fraud.features import fraud_feature_set
from loopline.events import EventLog, Message, TopicPartition, open_log
from loopline.exceptions import TopicNotFoundError
from loopline.features import EmbeddedStore, OnlineEngine, OnlineStore
from loopline.features.worker import FeatureWorker
from loopline.feedback.labels import (
    DayPerformance,
    LabelBook,
    labels_from_json,
    matured_performance,
)
from loopline.monitoring.monitor import DriftMonitor, reference_of
from loopline.registry import Registry
from loopline.serving import KeyRing, Limits, Routing, RuleBook, Scorer, Service, load
from loopline.serving.decisions import open_decision_log
from loopline.serving.model import ServingModel
from loopline.serving.stream import StreamScorer
from loopline.settings import Settings

MODEL = "fraud"
LABELS = "labels"  # late labels (chargebacks, closed disputes): Label events
NOTIFICATIONS = "fraud.notifications"
DRIFT = "fraud.drift"  # a feature starting or stopping to drift (DriftEvent)
DEFAULT_RULES = Path(__file__).with_name("rules.yaml")
SWITCH_INTERVAL_S = 0.001
LABELS_EVERY_S = 1.0
CALENDAR_FEATURES = frozenset({"is_weekend"})  # a day's window is all weekend or none: not drift


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    state: Path = Path(".loopline/serving")
    registry: str | None = None
    model: str = MODEL
    rules: Path = DEFAULT_RULES
    keys: Path | None = None
    events: str | None = None  # event log URL for notifications (default: under state)
    features: str | None = None  # redis://... for a shared online store (default: embedded)
    watch_s: float = 5.0  # how often the registry's champion alias is checked (0: never)
    decisions: str | None = None  # postgresql://... prediction log (default: SQLite in state)
    drift_s: float = 60.0  # how often recent decisions are compared with the reference
    limits: Limits = field(default_factory=Limits)
    # fold decided transactions and labels into the online features here; False where
    # feature workers own a shared store's partitions (the scale-out profile)
    learn: bool = True

    @classmethod
    def of(cls, settings: Settings, **more: Any) -> ServeOptions:
        """The options for ``settings``' parts; a shared (Redis) store is left to the
        feature workers that own its partitions."""
        return cls(
            state=settings.state,
            registry=settings.registry,
            events=settings.events,
            features=settings.features,
            decisions=settings.decisions,
            learn=settings.features is None,
            **more,
        )


def token_key(state: Path) -> bytes:
    """The card-token key: ``$LOOPLINE_TOKEN_KEY`` (hex), else a random one kept in
    ``state/token.key`` (mode 0600)."""
    env = os.environ.get("LOOPLINE_TOKEN_KEY")
    if env:
        return bytes.fromhex(env)
    path = state / "token.key"
    if not path.exists():
        state.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return bytes.fromhex(path.read_text().strip())


def build(options: ServeOptions) -> Service:
    """Everything the service needs, loaded and warmed (ready when this returns)."""
    state = options.state
    state.mkdir(parents=True, exist_ok=True)
    registry = (
        Registry(options.registry, root=state / "registry") if options.registry else Registry()
    )

    def load_model(ref: str | int) -> ServingModel:
        return load(registry.resolve(options.model, ref))

    fs = fraud_feature_set()
    engine = OnlineEngine(views=fs.views, store=_store(options))
    log = open_log(options.events or f"file://{(state / 'events.db').resolve()}")
    decisions = open_decision_log(
        options.decisions or state / "decisions.db", notify=_notifier(log)
    )
    scorer = Scorer(
        feature_set=fs,
        engine=engine,
        routing=Routing(champion=load_model("champion")),
        rules=RuleBook(options.rules),
        token_key=token_key(state),
        learn=options.learn,
    )
    keys = KeyRing.load(options.keys or state / "keys.json")
    publish_drift = _publisher(log, DRIFT)

    def drift_for(model: ServingModel) -> DriftMonitor | None:
        path = model.extra.get("reference")
        if path is None:  # registered before references were: nothing to compare with
            return None
        return DriftMonitor(
            reference=reference_of(path),
            recent=lambda n, since: decisions.recent(n, model_version=model.label, since_ms=since),
            model_version=model.label,
            publish=lambda event: publish_drift(msgspec.json.encode(event), model.label),
            ignore=CALENDAR_FEATURES,
            clock=lambda: scorer.clock(),  # the scorer's: a simulation's clock where it runs one
        )

    def record_canary_rollback(label: str, why: str) -> None:
        version = int(label.rsplit(":", 1)[1])
        registry.record(
            options.model, version, "roll canary back", trigger="canary guard", why=why,
            passed=False,
        )  # fmt: skip

    book = LabelBook(state / "labels.db")
    feed = LabelFeed(engine, log, book, features=options.learn)
    decisions_db = None if options.decisions else state / "decisions.db"

    def performance() -> list[DayPerformance]:
        if decisions_db is None:  # PostgreSQL: the matured figures are its queries' job
            return []
        return matured_performance(decisions_db, book, now_ms=int(scorer.clock() * 1000))

    return Service(
        scorer=scorer,
        log=decisions,
        performance=performance,
        background=[(LABELS_EVERY_S, feed.run_once)],
        keys=keys,
        limits=options.limits,
        load_model=load_model,
        champion_version=lambda: registry.get(options.model, "champion").version,
        watch_s=options.watch_s,
        drift_for=drift_for,
        drift_s=options.drift_s,
        on_canary_rollback=record_canary_rollback,
    )


class LabelFeed:
    """Late labels from the ``labels`` topic into the online features (terminal risk, by
    the feature worker, offsets with the features; unless ``features`` is False: feature
    workers own them) and into the label book (offsets with the labels)."""

    def __init__(
        self, engine: OnlineEngine, log: EventLog, book: LabelBook, *, features: bool = True
    ) -> None:
        try:
            log.partitions(LABELS)
        except TopicNotFoundError:
            log.create_topic(LABELS, partitions=1)
        self.worker = (
            FeatureWorker(engine=engine, log=log, topic=LABELS, schema=Label) if features else None
        )
        self.log, self.book = log, book

    def run_once(self) -> int:
        """Take in what has arrived; return how many labels the book read."""
        while self.worker is not None and self.worker.run_once():
            pass
        read = 0
        for p in range(self.log.partitions(LABELS)):
            tp = TopicPartition(LABELS, p)
            while records := self.log.read(tp, self.book.offset(LABELS, p), max_records=5000):
                position = (LABELS, p, records[-1].offset + 1)
                self.book.add(labels_from_json(r.value for r in records), position=position)
                read += len(records)
        return read


def _store(options: ServeOptions) -> OnlineStore:
    if options.features is None:
        return EmbeddedStore(options.state / "features.db")
    from loopline.features.redis import RedisStore

    # a deadline inside the request budget: a hung Redis trips the breaker, not the caller
    return RedisStore(options.features, timeout_s=0.05)


def _publisher(log: EventLog, topic: str) -> Callable[[bytes, str], None]:
    """Append one message to ``topic`` (created with one partition when missing)."""
    try:
        log.partitions(topic)
    except TopicNotFoundError:
        log.create_topic(topic, partitions=1)

    def publish(value: bytes, key: str) -> None:
        log.append_many(topic, [Message(value, key=key.encode())])

    return publish


def _notifier(log: EventLog) -> Any:
    try:
        log.partitions(NOTIFICATIONS)
    except TopicNotFoundError:
        log.create_topic(NOTIFICATIONS, partitions=1)

    def notify(rows: list[dict[str, Any]]) -> None:
        flagged = [r for r in rows if r["decision"] != "approve"]
        if flagged:
            log.append_many(
                NOTIFICATIONS,
                [
                    Message(
                        msgspec.json.encode(
                            {
                                k: r[k]
                                for k in (
                                    "transaction_id",
                                    "decision",
                                    "score",
                                    "model_version",
                                    "card_token",
                                )
                            }
                        ),
                        key=r["card_token"].encode(),
                    )
                    for r in flagged
                ],
            )

    return notify


def card_device(cols: dict[str, Any]) -> None:
    """Add the card|device key to decoded transaction columns (as ``with_card_device``)."""
    cols["card_device"] = np.array(
        [
            f"{c}|{d}" if d else ""
            for c, d in zip(cols["card_token"], cols["device_id"], strict=True)
        ]
    )


def stream_scorer(service: Service, log: EventLog, *, max_records: int = 2000) -> StreamScorer:
    """The streaming path over ``log``'s transactions topic, sharing the service's
    scorer (features, model, rules) and prediction log."""
    return StreamScorer(
        scorer=service.scorer,
        log=log,
        decisions=service.log,
        topic="transactions",
        schema=Transaction,
        max_records=max_records,
        derive=card_device,
        quality=TRANSACTION_QUALITY,
        watch=service.watch_canary,
    )


def serve(options: ServeOptions, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service (one process, one event loop) until interrupted."""
    import sys

    import uvicorn

    from loopline.monitoring.tracing import json_logging

    # the event loop takes the GIL back from a background thread (the registry watch
    # loading a new model) within 1 ms instead of Python's default 5 ms
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    json_logging()  # one JSON object a line, each with its request's trace id
    service = build(options)
    uvicorn.run(service, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
