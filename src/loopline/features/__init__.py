"""Features: one definition, computed online (stream) and offline (point-in-time), in agreement.

Declare :class:`FeatureView` s; :class:`OnlineEngine` keeps them up to date from the
event log in an :class:`EmbeddedStore` (or Redis), and :func:`training_set` computes the
same values over history with DuckDB; :func:`validate` checks that they agree.
:class:`FeatureWorker` applies a topic's events to the online state with its offsets.
``RedisStore`` (the ``redis`` extra) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopline.features.base import BatchReads, OnlineStore, Table
from loopline.features.definitions import (
    Aggregation,
    Entity,
    Feature,
    FeatureView,
    Filter,
    Source,
    days,
    hours,
    minutes,
    seconds,
)
from loopline.features.derived import Distance, Ratio, RequestFeature, Speed, ZScore
from loopline.features.embedded import EmbeddedStore
from loopline.features.featureset import FeatureSet
from loopline.features.offline import training_set
from loopline.features.online import Checkpoint, OnlineEngine
from loopline.features.reads import FeatureValues
from loopline.features.validate import mismatch_rates, validate
from loopline.features.worker import FeatureWorker, WorkerStats

if TYPE_CHECKING:
    from loopline.features.redis import RedisStore

__all__ = [
    "Aggregation",
    "BatchReads",
    "Checkpoint",
    "Distance",
    "EmbeddedStore",
    "Entity",
    "Feature",
    "FeatureSet",
    "FeatureValues",
    "FeatureView",
    "FeatureWorker",
    "Filter",
    "OnlineEngine",
    "OnlineStore",
    "Ratio",
    "RedisStore",
    "RequestFeature",
    "Source",
    "Speed",
    "Table",
    "WorkerStats",
    "ZScore",
    "days",
    "hours",
    "minutes",
    "mismatch_rates",
    "seconds",
    "training_set",
    "validate",
]


def __getattr__(name: str) -> Any:  # a backend needing an extra, imported on first use
    if name == "RedisStore":
        from loopline.features.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module 'loopline.features' has no attribute {name!r}")
