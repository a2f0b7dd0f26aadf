"""The fraud application's streaming feature views, declared with the feature engine.

``fraud_views``: velocity per card, spending per customer, activity per terminal and per
device, 20 features over 4 entities: the streaming view set the feature-engine benchmark
measures. ``fraud_feature_set``: what the fraud model reads, with label-based terminal
risk, location and device features.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from loopline.features import (
    Aggregation,
    Distance,
    Entity,
    FeatureSet,
    FeatureView,
    Filter,
    Ratio,
    RequestFeature,
    Source,
    Speed,
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


LABELS = Source(name="labels", topic="labels", timestamp="label_time_ms")
CARD_DEVICE = Entity(name="card_device", join_key="card_device")
VELOCITY = (minutes(1), minutes(5), hours(1), days(1), days(7), days(30))


def model_views() -> tuple[FeatureView, ...]:
    """The views the fraud model reads: velocity, the card's usual amounts and places, its
    previous transaction, terminal activity and risk (from labels as they arrived), and
    device novelty."""
    month = (days(30),)
    return (
        FeatureView(
            name="card",
            entity=CARD,
            source=TRANSACTIONS,
            aggregations=(
                Aggregation(function="count", windows=VELOCITY),
                Aggregation(function="sum", column="amount", windows=VELOCITY),
                Aggregation(function="mean", column="amount", windows=(days(1), days(30))),
                Aggregation(function="std", column="amount", windows=month),
                Aggregation(function="max", column="amount", windows=(days(7),)),
                Aggregation(function="mean", column="latitude", windows=month),
                Aggregation(function="mean", column="longitude", windows=month),
                Aggregation(function="last", column="latitude", windows=month),
                Aggregation(function="last", column="longitude", windows=month),
                Aggregation(function="time_since_last", windows=month),
                Aggregation(function="count", windows=(days(1),), where=Filter("channel", "cnp")),
                Aggregation(function="distinct_count", column="terminal_id", windows=(days(1),)),
            ),
        ),
        FeatureView(
            name="terminal",
            entity=TERMINAL,
            source=TRANSACTIONS,
            aggregations=(Aggregation(function="count", windows=(days(1), days(7), days(30))),),
        ),
        FeatureView(
            name="terminal_risk",
            entity=TERMINAL,
            source=LABELS,
            aggregations=(
                Aggregation(
                    function="mean", column="is_fraud", windows=(days(1), days(7), days(30))
                ),
                Aggregation(function="count", windows=month),
            ),
        ),
        FeatureView(
            name="card_device",
            entity=CARD_DEVICE,
            source=TRANSACTIONS,
            aggregations=(Aggregation(function="count", windows=month),),
        ),
    )


def fraud_feature_set() -> FeatureSet:
    """The fraud model's features: each transaction against the history before it.

    Terminal risk is the share of fraud among the labels that had *arrived* in the window
    (chargebacks come days late), as the handbook's delayed terminal risk; device novelty
    is ``card_device__count_30d == 0`` (the card has not used this device in 30 days).
    """
    return FeatureSet(
        name="fraud",
        views=model_views(),
        include_event=False,
        request=(
            RequestFeature(name="tx_amount", column="amount"),
            RequestFeature(name="log_amount", column="amount", transform="log1p"),
            RequestFeature(name="hour_of_day", column="event_time_ms", transform="hour_of_day"),
            RequestFeature(name="is_weekend", column="event_time_ms", transform="is_weekend"),
            RequestFeature(
                name="card_not_present", column="channel", transform="equals", value="cnp"
            ),
            RequestFeature(
                name="foreign_currency", column="currency", transform="equals", value="USD"
            ),
            RequestFeature(name="tx_latitude", column="latitude"),
            RequestFeature(name="tx_longitude", column="longitude"),
        ),
        derived=(
            ZScore(
                name="amount_zscore_30d",
                value="tx_amount",
                mean="card__amount_mean_30d",
                std="card__amount_std_30d",
            ),
            Ratio(
                name="amount_over_mean_1d",
                numerator="tx_amount",
                denominator="card__amount_mean_1d",
            ),
            Distance(
                name="km_from_usual_place",
                lat="tx_latitude",
                lon="tx_longitude",
                to_lat="card__latitude_mean_30d",
                to_lon="card__longitude_mean_30d",
            ),
            Distance(
                name="km_from_last_place",
                lat="tx_latitude",
                lon="tx_longitude",
                to_lat="card__latitude_last_30d",
                to_lon="card__longitude_last_30d",
            ),
            Speed(
                name="travel_kmh",
                distance="km_from_last_place",
                elapsed="card__time_since_last_30d",
            ),
        ),
    )


def label_risk_views() -> tuple[FeatureView, ...]:
    """Views over the labels as they arrived, beyond the terminal's fraud rate: the
    number of frauds confirmed for the card and at the terminal in recent windows (a
    compromised card or terminal keeps being used after its first chargeback)."""
    recent = (days(1), days(3), days(7), days(30))
    return (
        FeatureView(
            name="card_risk",
            entity=CARD,
            source=LABELS,
            aggregations=(Aggregation(function="sum", column="is_fraud", windows=recent),),
        ),
        FeatureView(
            name="terminal_frauds",
            entity=TERMINAL,
            source=LABELS,
            aggregations=(Aggregation(function="sum", column="is_fraud", windows=recent[:3]),),
        ),
    )


def risk_feature_set() -> FeatureSet:
    """The fraud feature set plus :func:`label_risk_views` and the amount against the
    card's 30-day mean and 7-day maximum (the quality benchmark's feature lever; the
    served model reads :func:`fraud_feature_set`)."""
    base = fraud_feature_set()
    return FeatureSet(
        name="fraud-risk",
        views=(*base.views, *label_risk_views()),
        include_event=False,
        request=base.request,
        derived=(
            *base.derived,
            Ratio(
                name="amount_over_mean_30d",
                numerator="tx_amount",
                denominator="card__amount_mean_30d",
            ),
            Ratio(
                name="amount_over_max_7d",
                numerator="tx_amount",
                denominator="card__amount_max_7d",
            ),
        ),
    )


def with_card_device(table: pa.Table) -> pa.Table:
    """Add the ``card_device`` key (card token | device id; null without a device)."""
    device = table["device_id"].cast(pa.string())
    key = pc.binary_join_element_wise(table["card_token"].cast(pa.string()), device, "|")
    return table.append_column("card_device", key)
