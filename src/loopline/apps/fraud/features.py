"""The fraud application's streaming feature views, declared with the feature engine.

Velocity per card, spending per customer, activity per terminal and per device: 20
features over 4 entities. (Label-based merchant risk and location features, which need
the simulator's labels and coordinates, join them in the fraud application proper.)
"""

from __future__ import annotations

from loopline.features import Aggregation, Entity, FeatureView, Filter, Source, days, hours, minutes

TRANSACTIONS = Source(name="transactions", topic="transactions", timestamp="event_time_ms")

CARD = Entity(name="card", join_key="card_token")
CUSTOMER = Entity(name="customer", join_key="customer_id")
TERMINAL = Entity(name="terminal", join_key="terminal_id")
DEVICE = Entity(name="device", join_key="device_id")


def fraud_views() -> tuple[FeatureView, ...]:
    """The views, newly built (definitions are values: equal views have equal versions)."""
    return (
        FeatureView(
            name="card",
            entity=CARD,
            source=TRANSACTIONS,
            aggregations=(
                Aggregation(function="count", windows=(minutes(1), minutes(5), hours(1), days(1))),
                Aggregation(
                    function="sum", column="amount", windows=(minutes(5), hours(1), days(1))
                ),
                Aggregation(function="mean", column="amount", windows=(days(7),)),
                Aggregation(function="std", column="amount", windows=(days(7),)),
                Aggregation(function="count", windows=(hours(1),), where=Filter("channel", "cnp")),
                Aggregation(function="distinct_count", column="terminal_id", windows=(hours(1),)),
                Aggregation(function="time_since_last", windows=(days(7),)),
            ),
        ),
        FeatureView(
            name="customer",
            entity=CUSTOMER,
            source=TRANSACTIONS,
            aggregations=(
                Aggregation(function="count", windows=(days(1), days(7))),
                Aggregation(function="max", column="amount", windows=(days(7),)),
            ),
        ),
        FeatureView(
            name="terminal",
            entity=TERMINAL,
            source=TRANSACTIONS,
            aggregations=(
                Aggregation(function="count", windows=(hours(1), days(1))),
                Aggregation(function="sum", column="amount", windows=(days(1),)),
            ),
        ),
        FeatureView(
            name="device",
            entity=DEVICE,
            source=TRANSACTIONS,
            aggregations=(
                Aggregation(function="count", windows=(hours(1),)),
                Aggregation(function="distinct_count", column="card_token", windows=(days(1),)),
            ),
        ),
    )
