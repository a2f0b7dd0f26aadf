"""The fraud application's streaming feature views, declared with the feature engine.

Velocity per card, spending per customer, activity per terminal and per device: 20
features over 4 entities. (Label-based merchant risk and location features, which need
the simulator's labels and coordinates, join them in the fraud application proper.)
"""

from __future__ import annotations

from loopline.features import (
    Aggregation,
    Entity,
    FeatureSet,
    FeatureView,
    Filter,
    Ratio,
    RequestFeature,
    Source,
    ZScore,
    days,
    hours,
    minutes,
)

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


def fraud_feature_set() -> FeatureSet:
    """The views plus features of the transaction itself and their combinations."""
    return FeatureSet(
        name="fraud",
        views=fraud_views(),
        request=(
            RequestFeature(name="tx_amount", column="amount"),
            RequestFeature(name="log_amount", column="amount", transform="log1p"),
            RequestFeature(name="hour_of_day", column="event_time_ms", transform="hour_of_day"),
            RequestFeature(name="is_weekend", column="event_time_ms", transform="is_weekend"),
            RequestFeature(
                name="card_not_present", column="channel", transform="equals", value="cnp"
            ),
        ),
        derived=(
            ZScore(
                name="amount_zscore_7d",
                value="tx_amount",
                mean="card__amount_mean_7d",
                std="card__amount_std_7d",
            ),
            Ratio(
                name="card_spend_1h_over_1d",
                numerator="card__amount_sum_1h",
                denominator="card__amount_sum_1d",
            ),
        ),
    )
