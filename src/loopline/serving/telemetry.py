"""The service's Prometheus metrics (one registry per service instance).

Labels stay bounded: a route is its method and path only for the routes the service
has (everything else is ``other``), and models, arms, outcomes and causes come from
the service itself, never from a request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from loopline.serving.endpoint import Prediction
    from loopline.serving.routing import Deployment

# the fixed causes of a degraded answer (a failing model adds "model_error:<version>")
DEGRADED_CAUSES = ("features_unavailable", "rules_only", "model_fallback", "previous_model")
# seconds, aligned to a 50 ms request budget
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.content_type = CONTENT_TYPE_LATEST
        self.requests = Counter(
            "loopline_http_requests", "HTTP requests", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "loopline_http_request_seconds", "Request latency", ["route"],
            buckets=LATENCY_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.decisions = Counter(
            "loopline_decisions", "Predictions by outcome", ["decision", "model", "arm"],
            registry=r,
        )  # fmt: skip
        self.degraded = Counter(
            "loopline_degraded", "Degraded answers by cause", ["cause"], registry=r
        )
        for cause in DEGRADED_CAUSES:  # exposed at 0 before the first one: alerts see a rate
            self.degraded.labels(cause)
        self.stage = Histogram(
            "loopline_stage_seconds", "Time per request stage", ["stage"],
            buckets=LATENCY_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.shed_total = Counter(
            "loopline_shed", "Requests refused with 503 (back-pressure)", registry=r
        )
        self.replays = Counter(
            "loopline_idempotent_replays", "Requests answered from the log", registry=r
        )
        self.cancelled = Counter(
            "loopline_streams_cancelled", "Streamed answers whose caller went away", registry=r
        )
        self.inflight = Gauge("loopline_inflight", "Requests in progress", registry=r)
        self.models = Gauge(
            "loopline_model_loaded", "1 for each model version loaded, by role",
            ["role", "model"], registry=r,
        )  # fmt: skip
        self._children: dict[tuple[Any, ...], Any] = {}

    def watch(self, deployment: Deployment) -> None:
        """Expose ``deployment``'s swaps, rollbacks and failed registry reads."""
        self.registry.register(_DeploymentCollector(deployment))

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, bound once (labels() costs ~3 µs a call)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, route: str, status: int, seconds: float) -> None:
        self._child(self.requests, route, str(status)).inc()
        self._child(self.latency, route).observe(seconds)

    def predicted(self, p: Prediction[Any]) -> None:
        self._child(self.decisions, p.outcome, p.model_version, p.arm).inc()
        for cause in p.degraded:
            self._child(self.degraded, cause).inc()
        for stage, ms in p.timings_ms.items():
            self._child(self.stage, stage).observe(ms / 1000)

    def shed(self) -> None:
        self.shed_total.inc()

    def replayed(self) -> None:
        self.replays.inc()

    def exposition(self, inflight: int, deployment: Deployment) -> bytes:
        self.inflight.set(inflight)
        self.models.clear()
        routing = deployment.routing
        for role, model in (
            ("champion", routing.champion),
            ("challenger", routing.challenger),
            ("previous", routing.previous),
        ):
            if model is not None:
                self.models.labels(role, model.label).set(1.0)
        return bytes(generate_latest(self.registry))


class _DeploymentCollector(Collector):
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def collect(self) -> Iterator[Metric]:
        d = self.deployment
        for name, text, value in (
            ("loopline_model_swaps", "Blue-green swaps to a new champion", d.swaps),
            ("loopline_canary_rollbacks", "Canaries rolled back by the guard", d.rollbacks),
            (
                "loopline_registry_watch_failures",
                "Failed reads of the registry's champion",
                d.follow_failures,
            ),
        ):
            family = CounterMetricFamily(name, text)
            family.add_metric([], value)
            yield family
        refused = CounterMetricFamily(
            "loopline_models_refused",
            "Model versions refused as untrusted (unsigned, bad signature, changed files)",
            labels=["reason"],
        )
        for reason, count in sorted(d.refused.items()):
            refused.add_metric([reason], count)
        yield refused
