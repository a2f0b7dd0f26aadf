"""The request path of a model on online features, for applications whose requests are
events: features as of the event from the online engine -> the routed model -> the
shadow model, with the kernel's ordered fallbacks.

:class:`TabularScorer` does the generic part of a batch and returns :class:`Scored`;
the application then applies its rules and policy to the scores and builds its
answers, with the kernel's ordered fallbacks (:mod:`loopline.serving.fallbacks`); with
no stored features, no score at all (``rules-only``: the application's rules decide
alone). Every degraded answer says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loopline.features import FeatureSet, OnlineEngine
from loopline.models import ServingModel
from loopline.serving.fallbacks import predict_ordered
from loopline.serving.learning import Learner
from loopline.serving.resilience import CircuitBreaker
from loopline.serving.routing import Routing

F64 = npt.NDArray[np.float64]
Columns = dict[str, np.ndarray]


@dataclass
class Scored:
    """A batch scored, row by row: the model routed to and its arm, the score, the label
    of what answered (``rules-only``: nothing did), and why it is degraded."""

    picks: list[tuple[ServingModel, str]]
    scores: F64
    labels: list[str]
    degraded: list[list[str]]
    inputs: dict[int, F64]  # id(model) -> the rows it scored, as its input matrix
    row_in_model: list[int]  # each row's index in its model's input matrix

    def x(self, i: int) -> F64:
        """Row ``i``'s model inputs (one row)."""
        k = self.row_in_model[i]
        return self.inputs[id(self.picks[i][0])][k : k + 1]


class TabularScorer:
    """Features and models for batches of events (see the module docstring).

    Args:
        feature_set: The features the models read.
        engine: The online engine serving them.
        routing_key: The event column that routes (a stable share per key).
        learn: Whether predicted events are folded into the online features here (one
            process owns the store: the embedded default). Scorers that share a
            remote store do not learn: the feature workers that own its partitions do.
        clock: Seconds since 1970 (a simulation's clock, or the wall clock).
    """

    def __init__(
        self,
        *,
        feature_set: FeatureSet,
        engine: OnlineEngine,
        routing_key: str,
        learn: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.feature_set = feature_set
        self.engine = engine
        self.routing_key = routing_key
        self.clock = clock
        self.store_breaker = CircuitBreaker("features")
        self.learner = Learner(engine, topic=feature_set.source.topic, breaker=self.store_breaker)
        self.learns = learn
        self.feature_failures = 0
        self.shadow_failures = 0

    @property
    def only_reads_remote(self) -> bool:
        """Whether scoring only reads a remote store (it learns nothing): safe to run on a
        thread of its own while the event loop goes on."""
        return not self.learns and self.engine.remote

    def features(self, cols: Columns, degraded: list[str]) -> dict[str, F64]:
        """Online features through the store's breaker; defaults when it is open or fails."""
        self.learner.catch_up()
        breaker = self.store_breaker
        if breaker.allow():
            started = time.perf_counter()
            try:
                features = self.feature_set.online(self.engine, cols)
            except Exception:  # a store failure degrades, never a 5xx
                breaker.record(False)
            else:
                breaker.record(True, time.perf_counter() - started)
                return {k: np.asarray(v, dtype=np.float64) for k, v in features.items()}
        self.feature_failures += 1
        degraded.append("features_unavailable")
        return self._defaults(cols)

    def score(
        self, cols: Columns, values: dict[str, F64], routing: Routing, degraded: list[str]
    ) -> Scored:
        """Route each row by its key and score each model's rows in one call."""
        keys = cols[self.routing_key].tolist()
        n = len(keys)
        picks = [routing.pick(k) for k in keys]
        unknown = np.full(n, math.nan)
        scores = np.zeros(n)
        labels: list[str] = [""] * n
        degraded_of: list[list[str]] = [degraded] * n
        inputs: dict[int, F64] = {}
        row_in_model = [0] * n
        models = {id(m): m for m, _ in picks}
        for model in models.values():
            rows = [i for i, (m, _) in enumerate(picks) if m is model]
            x = as_rows([values.get(f, unknown) for f in model.signature.inputs])
            if len(models) > 1:
                x = x[rows]
            inputs[id(model)] = x
            said = list(degraded)
            got, label = predict_ordered(model, routing.previous, x, said)
            scores[rows] = got
            for k, i in enumerate(rows):
                labels[i], degraded_of[i], row_in_model[i] = label, said, k
        return Scored(picks, scores, labels, degraded_of, inputs, row_in_model)

    def shadow(
        self, values: dict[str, F64], routing: Routing, picks: list[tuple[ServingModel, str]]
    ) -> F64 | None:
        """The challenger's scores of the champion's rows where the routing shadows (NaN
        elsewhere, and where it failed: logged as unscored, never served)."""
        challenger = routing.challenger
        if not routing.shadow or challenger is None:
            return None
        rows = [i for i, (_, arm) in enumerate(picks) if arm == "champion"]
        if not rows:
            return None
        unknown = np.full(len(picks), math.nan)
        x = as_rows([values.get(f, unknown) for f in challenger.signature.inputs])
        shadow = np.full(len(picks), math.nan)
        try:
            shadow[rows] = challenger.predict(x[rows])[0]
        except Exception:  # a failing shadow is unscored
            self.shadow_failures += 1
        return shadow

    def learn(self, columns: Columns) -> None:
        """Fold a predicted event into the online features (in micro-batches)."""
        if self.learns:
            self.learner.add(columns)

    def _defaults(self, cols: Columns) -> dict[str, F64]:
        """Request-time features only; every stored feature unknown (NaN)."""
        n = len(cols[self.routing_key])
        out = {name: np.full(n, math.nan) for name in self.feature_set.names}
        for r in self.feature_set.request:
            out[r.name] = np.asarray(r.compute(cols), dtype=np.float64)
        return out


def as_rows(columns: list[F64]) -> F64:
    """Equal-length columns as the rows of one matrix (np.column_stack costs ~2 µs a
    column; one array build and a transpose do not)."""
    return np.ascontiguousarray(np.array(columns, dtype=np.float64).T)


def lap(timings: dict[str, float], name: str, mark: float) -> float:
    """Record the milliseconds since ``mark`` as stage ``name``; return now."""
    now = time.perf_counter()
    timings[name] = round((now - mark) * 1000, 3)
    return now


class TabularCollector(Collector):
    """A :class:`TabularScorer`'s state as Prometheus gauges, read when scraped: its
    store's breaker, and the predicted events not yet folded into the features."""

    def __init__(self, scorer: TabularScorer) -> None:
        self.scorer = scorer

    def collect(self) -> Iterator[Metric]:
        s = self.scorer
        breaker = GaugeMetricFamily(
            "loopline_circuit_open", "1 while a dependency's breaker is open", labels=["dependency"]
        )
        breaker.add_metric([s.store_breaker.name], 1.0 if s.store_breaker.state == "open" else 0.0)
        yield breaker
        pending = GaugeMetricFamily(
            "loopline_learn_pending", "Predicted events not yet folded into the online features"
        )
        pending.add_metric([], s.learner.pending)
        yield pending
        lag = GaugeMetricFamily(
            "loopline_learn_lag_seconds",
            "Age of the oldest predicted event not yet in the online features",
        )
        lag.add_metric([], s.learner.lag_s())
        yield lag
