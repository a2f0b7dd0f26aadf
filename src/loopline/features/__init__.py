"""Features: one definition, computed online (stream) and offline (point-in-time), in agreement.

Declare :class:`FeatureView` s; :class:`OnlineEngine` keeps them up to date from the
event log in an :class:`EmbeddedStore` (or Redis), and :func:`training_set` computes the
same values over history with DuckDB.
"""

from loopline.features.base import OnlineStore, Table
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

__all__ = [
    "Aggregation",
    "Checkpoint",
    "Distance",
    "EmbeddedStore",
    "Entity",
    "Feature",
    "FeatureSet",
    "FeatureValues",
    "FeatureView",
    "Filter",
    "OnlineEngine",
    "OnlineStore",
    "Ratio",
    "RequestFeature",
    "Source",
    "Speed",
    "Table",
    "ZScore",
    "days",
    "hours",
    "minutes",
    "seconds",
    "training_set",
]
