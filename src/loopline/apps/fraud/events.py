"""The fraud application's events.

:func:`random_transactions` is a stand-in stream for demos and benchmarks: uniform random
values, no fraud patterns. The realistic transaction simulator (customers, terminals,
fraud scenarios, late labels) replaces it in the fraud application proper.
"""

from __future__ import annotations

import numpy as np

from loopline.events import Event
from loopline.monitoring import Expectations


class Transaction(Event, frozen=True, kw_only=True):
    """A card transaction as the payment processor sees it. Card numbers never appear:
    ``card_token`` is a keyed hash made at the edge."""

    v: int = 1
    transaction_id: str
    event_time_ms: int
    card_token: str
    customer_id: str
    terminal_id: str
    merchant_category: str
    amount: float
    currency: str
    channel: str  # "cp" (card present) or "cnp" (card not present)
    device_id: str | None = None
    latitude: float | None = None
    longitude: float | None = None


TRANSACTION_QUALITY = Expectations(
    required=("transaction_id", "card_token", "terminal_id"),
    ranges={
        "amount": (0.01, 1_000_000.0),
        "latitude": (-90.0, 90.0),
        "longitude": (-180.0, 180.0),
        "event_time_ms": (946_684_800_000, 4_102_444_800_000),  # 2000-01-01 to 2100-01-01
    },
    allowed={"channel": frozenset({"cp", "cnp"})},
    # card-present sales carry no device (about 70 % of the simulated stream)
    max_null_rate={"device_id": 0.9, "latitude": 0.2},
    max_cardinality={"currency": 50},
    where="loopline.apps.fraud.events.TRANSACTION_QUALITY",
)

_CATEGORIES = ("grocery", "fuel", "restaurant", "electronics", "travel", "online", "pharmacy")


def random_transactions(
    n: int, *, cards: int = 10_000, start_ms: int = 1_767_225_600_000, seed: int = 0
) -> list[Transaction]:
    """``n`` random transactions, one per ~10 ms of event time, deterministic under ``seed``."""
    rng = np.random.default_rng(seed)
    card = rng.integers(0, cards, n)
    terminal = rng.integers(0, cards * 2, n)
    amount = np.round(rng.lognormal(3.5, 1.0, n), 2)
    category = rng.integers(0, len(_CATEGORIES), n)
    cnp = rng.random(n) < 0.4
    lat, lon = rng.uniform(35, 60, n), rng.uniform(-10, 30, n)
    times = start_ms + np.cumsum(rng.integers(0, 20, n))
    return [
        Transaction(
            transaction_id=f"tx-{seed}-{i}",
            event_time_ms=int(times[i]),
            card_token=f"tok-{card[i]:08d}",
            customer_id=f"cust-{card[i]:08d}",
            terminal_id=f"term-{terminal[i]:08d}",
            merchant_category=_CATEGORIES[category[i]],
            amount=float(amount[i]),
            currency="EUR",
            channel="cnp" if cnp[i] else "cp",
            device_id=f"dev-{card[i]:08d}" if cnp[i] else None,
            latitude=float(lat[i]),
            longitude=float(lon[i]),
        )
        for i in range(n)
    ]


class Label(Event, frozen=True, kw_only=True):
    """The outcome of a transaction, arriving late: a chargeback (``is_fraud`` 1) or the
    close of its dispute window (0). ``label_time_ms`` is when it reached us."""

    v: int = 1
    transaction_id: str
    label_time_ms: int
    event_time_ms: int
    card_token: str
    terminal_id: str
    is_fraud: float
    customer_id: str | None = None  # whose transaction (crypto-shredding on Kafka)
