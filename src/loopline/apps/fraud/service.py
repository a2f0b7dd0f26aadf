"""``loopline serve fraud``: the fraud decision service, wired from the platform's parts.

It loads the registry's ``champion`` (pinned, every file checked), keeps the fraud
features online in an embedded store under ``--state`` (or a shared Redis), writes
every decision to the prediction log there (or PostgreSQL) with the late labels beside
it, publishes review and decline decisions to the ``fraud.notifications`` topic, and
watches the champion's drift and the registry's champion alias.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from loopline.apps.fraud.api import ScoreRequest, ScoreResponse, check, checks
from loopline.apps.fraud.erasure import open_events
from loopline.apps.fraud.events import TRANSACTION_QUALITY, Transaction
from loopline.apps.fraud.features import fraud_feature_set
from loopline.apps.fraud.labels import FraudLabels
from loopline.apps.fraud.pipeline import COLUMNS, FraudPipeline
from loopline.events import DeadLetterQueue, EventLog, Message
from loopline.exceptions import ConfigError, TopicNotFoundError
from loopline.features import EmbeddedStore, OnlineEngine, OnlineStore
from loopline.feedback import DayPerformance, matured_performance
from loopline.files import write_private
from loopline.models import ServingModel, load
from loopline.monitoring import (
    REFERENCE_FILE,
    DriftCollector,
    DriftMonitor,
    DriftWatch,
    MonitorPage,
    Sampler,
    Tracing,
    reference_of,
)
from loopline.predictions import Log, Row, open_prediction_log
from loopline.privacy import Retention, RetentionJob, expiries
from loopline.registry import Registry
from loopline.serving import (
    Deployment,
    Endpoint,
    KeyRing,
    Limits,
    Metrics,
    Outbox,
    OutboxCollector,
    Routing,
    RuleBook,
    Service,
    StreamScorer,
    TabularCollector,
    TabularScorer,
    every,
    openapi_document,
)
from loopline.settings import Settings
from loopline.tasks import Binary
from loopline.units import DAY_MS

MODEL = "fraud"
TITLE = "loopline fraud decisions"
NOTIFICATIONS = "fraud.notifications"
DRIFT = "fraud.drift"  # a feature starting or stopping to drift (DriftEvent)
DEFAULT_RULES = Path(__file__).with_name("rules.yaml")
SWITCH_INTERVAL_S = 0.001
LABELS_EVERY_S = 1.0
CALENDAR_FEATURES = frozenset({"is_weekend"})  # a day's window is all weekend or none: not drift
PAGE_DAYS = 30  # the monitoring page's matured performance: the last month of decisions
# the task, as the page reports it: the served (rule-adjusted) score, flagged = not approved
TASK = Binary(score="score", flagged=lambda outputs: outputs["decision"] != "approve")
# what retraining and the promotion gate compare: the model's own score, before rules
GATE_TASK = Binary(score="model_score")


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    state: Path = Path(".loopline/serving")
    registry: str | None = None
    model: str = MODEL
    rules: Path = DEFAULT_RULES
    keys: Path | None = None
    events: str | None = None  # event log URL for notifications (default: under state)
    subject_keys: str | None = None  # crypto-shredding keys on Kafka (default: decisions)
    features: str | None = None  # redis://... for a shared online store (default: embedded)
    watch_s: float = 5.0  # how often the registry's champion alias is checked (0: never)
    decisions: str | None = None  # postgresql://... prediction log (default: SQLite in state)
    drift_s: float = 60.0  # how often recent decisions are compared with the reference
    limits: Limits = field(default_factory=Limits)
    # fold decided transactions and labels into the online features here; False where
    # feature workers own a shared store's partitions (the scale-out profile)
    learn: bool = True
    tracing: bool = True
    secrets: Path | None = None  # the card-token key's folder (default: state/../secrets)
    retention: Retention = field(default_factory=Retention)  # days per store (None: ever)
    retention_period_s: float = 3600.0

    @classmethod
    def of(cls, settings: Settings, **more: Any) -> ServeOptions:
        """The options for ``settings``' parts; a shared (Redis) store is left to the
        feature workers that own its partitions."""
        return cls(
            state=settings.state,
            registry=settings.registry,
            events=settings.events,
            subject_keys=settings.subject_keys,
            features=settings.features,
            decisions=settings.decisions,
            learn=settings.features is None,
            retention=Retention(
                events_days=settings.retention_events_days,
                predictions_days=settings.retention_predictions_days,
                labels_days=settings.retention_labels_days,
                dead_letters_days=settings.retention_dead_letters_days,
            ),
            retention_period_s=settings.retention_period_s,
            **more,
        )


@dataclass(frozen=True)
class FraudService:
    """The service and the parts it was built from."""

    service: Service
    pipeline: FraudPipeline
    deployment: Deployment
    log: Log
    events: EventLog
    labels: FraudLabels
    drift: DriftWatch
    page: MonitorPage
    registry: Registry
    outbox: Outbox[Row]

    @property
    def engine(self) -> OnlineEngine:
        return self.pipeline.tabular.engine

    def performance(self) -> list[DayPerformance]:
        """Matured precision, recall and AP by decision day (the monitoring page's)."""
        return performance(self.log, self.pipeline)

    def close(self) -> None:
        self.pipeline.close()
        self.log.close()
        self.outbox.close()  # what the last commits flagged, published
        self.events.close()
        self.engine.store.close()


def score_endpoint(pipeline: FraudPipeline | None, *, offload: bool = False) -> Endpoint:
    """``POST /v1/score`` (without a pipeline: for its OpenAPI document alone)."""
    return Endpoint(
        path="/v1/score",
        request=ScoreRequest,
        response=ScoreResponse,
        pipeline=pipeline,
        check=check if pipeline is None else checks(lambda: pipeline.clock()),
        offload=offload,
        summary="Decide on one transaction",
        detail_fields=("score", "reasons"),
        pan_fields=("card_number",),  # tokenized at once, never stored
    )


def openapi() -> dict[str, Any]:
    """The service's OpenAPI document, without building the service."""
    return openapi_document(TITLE, [score_endpoint(None)])


def performance(log: Log, pipeline: FraudPipeline) -> list[DayPerformance]:
    now_ms = int(pipeline.clock() * 1000)
    return matured_performance(log, TASK, now_ms=now_ms, since_ms=now_ms - PAGE_DAYS * DAY_MS)


MIN_KEY_BYTES = 32


def token_key(secrets_dir: Path, state: Path | None = None) -> bytes:
    """The card-token key: ``$LOOPLINE_TOKEN_KEY`` (hex), else a random one kept in
    ``secrets_dir/token.key``, apart from the tokens it protects (the state), readable
    by its owner alone. One left in ``state`` by an older version is moved there.
    A key shorter than 32 bytes is refused."""
    env = os.environ.get("LOOPLINE_TOKEN_KEY")
    path = secrets_dir / "token.key"
    old = state / "token.key" if state is not None else None
    if not env and not path.exists() and old is not None and old.exists():
        write_private(path, old.read_bytes())  # tokens made before stay the same
        old.unlink()
    if not env and not path.exists():
        secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(path, secrets.token_hex(MIN_KEY_BYTES).encode())
    text = env or path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < MIN_KEY_BYTES:
        where = "$LOOPLINE_TOKEN_KEY" if env else str(path)
        raise ConfigError(
            f"The card-token key in {where} must be at least {MIN_KEY_BYTES} bytes as hex "
            f"({2 * MIN_KEY_BYTES} hex digits); make one with `openssl rand -hex 32`."
        )
    return key


def build(options: ServeOptions) -> FraudService:
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
    events = open_events(
        options.events or f"file://{(state / 'events.db').resolve()}",
        keys=options.subject_keys or options.decisions,
    )
    outbox = _notifications(events)
    log = open_prediction_log(
        options.decisions or state / "decisions.db",
        columns=COLUMNS,
        notify=lambda rows: outbox.put_many(
            [r for r in rows if r.columns["decision"] != "approve"]
        ),
    )
    tabular = TabularScorer(
        feature_set=fs, engine=engine, routing_key="card_token", learn=options.learn
    )
    pipeline = FraudPipeline(
        tabular=tabular,
        rules=RuleBook(options.rules),
        token_key=token_key(options.secrets or state.parent / "secrets", state),
    )
    champion = load_model("champion")
    drift = DriftWatch(_drift_for(log, events, pipeline), champion)

    def record_rollback(label: str, why: str) -> None:
        version = int(label.rsplit(":", 1)[1])
        registry.record(
            options.model, version, "roll canary back", trigger="canary guard", why=why,
            passed=False,
        )  # fmt: skip

    deployment = Deployment(
        Routing(champion=champion),
        load=load_model,
        on_champion=drift.retarget,
        on_rollback=record_rollback,
    )
    labels = FraudLabels(engine, events, log, features=options.learn)
    labels_step = functools.partial(labels.step, offload=getattr(log, "remote", False))
    endpoint = score_endpoint(pipeline, offload=tabular.only_reads_remote)
    metrics = Metrics()
    metrics.registry.register(DriftCollector(drift))
    metrics.registry.register(TabularCollector(tabular))
    metrics.registry.register(OutboxCollector(outbox))
    sampler = Sampler(
        metrics.registry, lambda: deployment.routing.champion.label, routes={"POST /v1/score"}
    )
    page = MonitorPage("fraud decision service", sampler, drift, lambda: performance(log, pipeline))
    tasks = [sampler.run, page.run, lambda: every(LABELS_EVERY_S, labels_step)]
    if options.watch_s > 0:
        version_of = lambda: registry.get(options.model, "champion").version  # noqa: E731
        tasks.append(lambda: deployment.follow(version_of, options.watch_s))
    if options.drift_s > 0:
        tasks.append(lambda: drift.run(options.drift_s))
    retention = RetentionJob(
        expiries(
            options.retention,
            log=events,
            dead_letters=[DeadLetterQueue(events, fs.source.topic)]
            if options.retention.dead_letters_days
            else [],
            predictions=log,
        ),
        period_s=options.retention_period_s,
    )
    if retention.expiries:
        tasks.append(retention.run)
    service = Service(
        endpoints=[endpoint],
        deployment=deployment,
        log=log,
        keys=KeyRing.load(options.keys or state / "keys.json"),
        title=TITLE,
        limits=options.limits,
        admin={
            "rules/reload": _reload_rules(pipeline.rules),
            "erase": _erase(events, log, engine.store, state),
        },
        pages=page.pages(),
        reports=page.reports(),
        tasks=tasks,
        tracing=Tracing() if options.tracing else None,
        clock=lambda: pipeline.clock(),
        metrics=metrics,
    )
    return FraudService(
        service, pipeline, deployment, log, events, labels, drift, page, registry, outbox
    )


def _reload_rules(rules: RuleBook) -> Callable[[dict[str, Any]], Any]:
    from loopline.serving import refuse

    async def reload(args: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"rules_version": rules.reload().version}
        except (ConfigError, OSError) as exc:  # a broken rule file: the caller's to fix
            raise refuse(422, str(exc), field="rules") from None

    return reload


def _erase(
    events: EventLog, log: Log, store: OnlineStore, state: Path
) -> Callable[[dict[str, Any]], Any]:
    """``POST /admin/erase {"subject": CUSTOMER_ID}``: erase one customer from every store
    (GDPR art. 17). It runs on the event loop, which owns the embedded stores; the
    answer and the audit line count what each store removed and never name the
    customer."""
    from loopline.apps.fraud.erasure import ERASURE_LOG, Stores, erase_customer
    from loopline.privacy import ErasureLog
    from loopline.serving import refuse

    async def erase(args: dict[str, Any]) -> dict[str, Any]:
        subject = args.get("subject")
        if not isinstance(subject, str) or not 0 < len(subject) <= 128:
            raise refuse(422, "'subject' must be a customer id (1-128 chars).", field="subject")
        stores = Stores(
            events=events, predictions=log, features=store, data=(state / "data",),
            reports=(state,), audit=ErasureLog(state / ERASURE_LOG),
        )  # fmt: skip
        return dict(msgspec.to_builtins(erase_customer(subject, stores)))

    return erase


def _drift_for(
    log: Log, events: EventLog, pipeline: FraudPipeline
) -> Callable[[ServingModel], DriftMonitor | None]:
    publish = _publisher(events, DRIFT)

    def monitor_for(model: ServingModel) -> DriftMonitor | None:
        pinned = model.pinned
        if pinned is None or not pinned.has(REFERENCE_FILE):  # nothing to compare with
            return None
        return DriftMonitor(
            reference=reference_of(pinned.read(REFERENCE_FILE)),
            recent=lambda n, since: log.recent(n, model_version=model.label, since_ms=since),
            model_version=model.label,
            publish=lambda event: publish(msgspec.json.encode(event), model.label),
            ignore=CALENDAR_FEATURES,
            clock=lambda: pipeline.clock(),  # a simulation's clock where it runs one
        )

    return monitor_for


def _store(options: ServeOptions) -> OnlineStore:
    if options.features is None:
        return EmbeddedStore(options.state / "features.db")
    from loopline.features import RedisStore

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


def _notifications(log: EventLog) -> Outbox[Row]:
    """Review and decline decisions to the notifications topic, keyed by card token,
    published by a thread of their own (a slow broker never holds the event loop)."""
    try:
        log.partitions(NOTIFICATIONS)
    except TopicNotFoundError:
        log.create_topic(NOTIFICATIONS, partitions=1)

    def publish(rows: Sequence[Row]) -> None:
        log.append_many(NOTIFICATIONS, [_notification(r) for r in rows])

    return Outbox(publish, name="notifications")


def _notification(row: Row) -> Message:
    body = {
        "transaction_id": row.request_id,
        "decision": row.columns["decision"],
        "score": row.columns["score"],
        "model_version": row.model_version,
        "card_token": row.routing_key,
        "customer_id": row.columns["customer_id"],  # whose key encrypts it on Kafka
    }
    return Message(msgspec.json.encode(body), key=row.routing_key.encode())


def card_device(cols: dict[str, Any]) -> None:
    """Add the card|device key to decoded transaction columns (as ``with_card_device``)."""
    cols["card_device"] = np.array(
        [
            f"{c}|{d}" if d else ""
            for c, d in zip(cols["card_token"], cols["device_id"], strict=True)
        ]
    )


def stream_scorer(built: FraudService, log: EventLog, *, max_records: int = 2000) -> StreamScorer:
    """The streaming path over ``log``'s transactions topic, sharing the service's
    pipeline (features, models, rules), deployment and prediction log."""
    return StreamScorer(
        pipeline=built.pipeline,
        deployment=built.deployment,
        log=log,
        predictions=built.log,
        topic="transactions",
        schema=Transaction,
        max_records=max_records,
        derive=card_device,
        quality=TRANSACTION_QUALITY,
    )


def serve(options: ServeOptions, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service (one process, one event loop) until interrupted."""
    import sys

    import uvicorn

    from loopline.monitoring import json_logging

    # the event loop takes the GIL back from a background thread (the registry watch
    # loading a new model) within 1 ms instead of Python's default 5 ms
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    json_logging()  # one JSON object a line, each with its request's trace id
    built = build(options)
    uvicorn.run(
        built.service, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
