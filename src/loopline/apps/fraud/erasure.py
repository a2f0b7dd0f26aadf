"""Erasing one customer from the fraud system (GDPR art. 17).

The customer is the data subject: ``customer_id`` names them in transactions. Erased
with them: the card tokens and device ids they used and the ids of their transactions
(which the labels, the notifications and the prediction log's rows carry), and every
feature entity keyed by one of those (card, customer, device, card|device). Terminals
are not the customer's and stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loopline.apps.fraud.features import CARD, CUSTOMER, DEVICE
from loopline.apps.fraud.labels import LABELS
from loopline.apps.fraud.pipeline import COLUMNS
from loopline.events import EventLog, open_log
from loopline.exceptions import ConfigError
from loopline.features import EmbeddedStore
from loopline.predictions import Log, open_prediction_log
from loopline.privacy import (
    ErasureLog,
    ErasureReport,
    KeyStore,
    ShreddedLog,
    Subject,
    Target,
    dead_letters_target,
    erase,
    event_log_target,
    offline_store_target,
    online_store_target,
    prediction_log_target,
    reports_target,
    shredded_log_target,
)
from loopline.settings import Settings

TRANSACTIONS = "transactions"
CUSTOMER_SUBJECT = Subject(
    field=CUSTOMER.join_key,
    topics=(TRANSACTIONS,),
    linked=(CARD.join_key, DEVICE.join_key, "transaction_id"),
    key_separator="|",  # the card|device pair key of the device-novelty view
    column="customer_id",  # the service's decisions name their customer
)
ERASURE_LOG = "erasures.jsonl"
NOTIFICATIONS = "fraud.notifications"
# what names a customer on the event log: encrypted under their key where it cannot delete
SHREDDED_TOPICS = (TRANSACTIONS, LABELS, NOTIFICATIONS)


def open_events(url: str, *, keys: str | None) -> EventLog:
    """The fraud event log at ``url``. On one that cannot delete a record (Kafka), a
    customer's transactions, labels and notifications are encrypted under their own key
    from the ``keys`` store (a ``postgresql://`` URL or a file), so that erasing the key
    erases them (crypto-shredding, decision 0008); the other logs delete records."""
    log = open_log(url)
    if not url.startswith("kafka://"):
        return log
    if keys is None:
        log.close()
        raise ConfigError(
            "A Kafka event log needs a store of per-customer keys: set subject_keys (or "
            "decisions) to a postgresql:// URL."
        )
    return ShreddedLog(
        log, keys=KeyStore(keys), subject=CUSTOMER_SUBJECT, topics=SHREDDED_TOPICS, owns_keys=True
    )


@dataclass(frozen=True, kw_only=True)
class Stores:
    """Where the fraud system keeps a customer's data (what an erasure visits).

    ``data``: folders of Parquet history (``loopline simulate fraud``'s output, training
    data); ``reports``: folders of HTML and JSON reports (training, demos, scenarios).
    """

    events: EventLog
    predictions: Log | None = None
    features: object | None = None  # an EmbeddedStore or RedisStore
    data: tuple[Path, ...] = ()
    reports: tuple[Path, ...] = ()
    audit: ErasureLog
    source_topics: tuple[str, ...] = field(default=(TRANSACTIONS, LABELS))


def targets(stores: Stores) -> list[Target]:
    """The targets in erasure order: everything else first, the event log last (the
    linked values are found there, so a failed erasure can simply be run again)."""
    found: list[Target] = [reports_target(stores.reports)]
    columns = [*CUSTOMER_SUBJECT.fields, "card_device"]
    found += [offline_store_target(root, columns) for root in stores.data]
    if stores.features is not None:
        found.append(online_store_target(stores.features))
    if stores.predictions is not None:
        found.append(prediction_log_target(stores.predictions))
    events = stores.events
    if isinstance(events, ShreddedLog):  # Kafka: the customer's key goes, and with it
        return [*found, shredded_log_target(events)]  # their records (dead letters: retention)
    found.append(dead_letters_target(events, stores.source_topics))
    found.append(event_log_target(events))
    return found


def erase_customer(customer_id: str, stores: Stores) -> ErasureReport:
    """Erase one customer from every store; the report (and the audit line) counts what
    each store removed and names the customer only by a keyed hash."""
    return erase(
        customer_id,
        subject=CUSTOMER_SUBJECT,
        log=stores.events,
        targets=targets(stores),
        audit=stores.audit,
        predictions=stores.predictions,
    )


def erase_with_settings(
    customer_id: str, settings: Settings, *, reports: Sequence[Path] = ()
) -> ErasureReport:
    """:func:`erase_customer` over the stores ``settings`` name (the embedded ones under
    ``settings.state`` where no server is named; Parquet under ``state/data``; reports
    anywhere under ``state`` and ``reports``): what ``loopline erase`` and the service's
    admin endpoint call."""
    state = settings.state
    events = open_events(
        settings.events or f"file://{(state / 'events.db').resolve()}",
        keys=settings.subject_keys or settings.decisions,
    )
    predictions = open_prediction_log(settings.decisions or state / "decisions.db", columns=COLUMNS)
    features = _online_store(settings)
    try:
        stores = Stores(
            events=events,
            predictions=predictions,
            features=features,
            data=(state / "data",),
            reports=(state, *reports),
            audit=ErasureLog(state / ERASURE_LOG),
        )
        return erase_customer(customer_id, stores)
    finally:
        features.close()  # type: ignore[attr-defined]
        predictions.close()
        events.close()


def _online_store(settings: Settings) -> object:
    if settings.features is None:
        return EmbeddedStore(settings.state / "features.db")
    from loopline.features import RedisStore

    return RedisStore(settings.features)
