"""Prometheus metrics of the decision service (one registry per service instance)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from loopline.serving.scorer import Decided

# milliseconds, aligned to the 50 ms budget
# the fixed causes of a degraded answer (a failing model adds "model_error:<version>")
DEGRADED_CAUSES = ("features_unavailable", "rules_only", "model_fallback", "previous_model")
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
            "loopline_http_request_seconds",
            "Request latency",
            ["route"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.decisions = Counter(
            "loopline_decisions", "Decisions by outcome", ["decision", "model", "arm"], registry=r
        )
        self.degraded = Counter(
            "loopline_degraded", "Degraded answers by cause", ["cause"], registry=r
        )
        for cause in DEGRADED_CAUSES:  # exposed at 0 before the first one: alerts see a rate
            self.degraded.labels(cause)
        self.stage = Histogram(
            "loopline_stage_seconds",
            "Time per request stage",
            ["stage"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.shed_total = Counter(
            "loopline_shed", "Requests refused with 503 (back-pressure)", registry=r
        )
        self.replays = Counter(
            "loopline_idempotent_replays", "Requests answered from the log", registry=r
        )
        self.inflight = Gauge("loopline_inflight", "Requests in progress", registry=r)
        self.model_swaps = Counter(
            "loopline_model_swaps", "Blue-green swaps to a new champion", registry=r
        )
        self.canary_rollbacks = Counter(
            "loopline_canary_rollbacks", "Canaries rolled back by the guard", registry=r
        )
        self.watch_failures = Counter(
            "loopline_registry_watch_failures",
            "Failed reads of the registry's champion",
            registry=r,
        )
        self.breaker = Gauge(
            "loopline_circuit_open",
            "1 while a dependency's breaker is open",
            ["dependency"],
            registry=r,
        )
        self.unlearned = Gauge(
            "loopline_learn_pending",
            "Decided transactions not yet folded into the online features",
            registry=r,
        )
        self.unlearned_age = Gauge(
            "loopline_learn_lag_seconds",
            "Age of the oldest decided transaction not yet in the online features",
            registry=r,
        )
        self.models = Gauge(
            "loopline_model_loaded",
            "1 for each model version loaded, by role",
            ["role", "model"],
            registry=r,
        )

        self._children: dict[tuple[Any, ...], Any] = {}

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

    def decided(self, decided: Decided) -> None:
        r = decided.response
        self._child(self.decisions, r.decision, r.model_version, decided.arm).inc()
        for cause in r.degraded:
            self._child(self.degraded, cause).inc()
        for stage, ms in r.timings_ms.items():
            self._child(self.stage, stage).observe(ms / 1000)

    def shed(self) -> None:
        self.shed_total.inc()

    def replayed(self) -> None:
        self.replays.inc()

    def exposition(self, service: Any) -> bytes:
        self.inflight.set(service.inflight)
        scorer = service.scorer
        breaker = scorer.store_breaker
        self.breaker.labels(breaker.name).set(1.0 if breaker.state == "open" else 0.0)
        self.unlearned.set(scorer.pending)
        self.unlearned_age.set(scorer.learn_lag_s())
        self.models.clear()
        routing = scorer.routing
        for role, model in (
            ("champion", routing.champion),
            ("challenger", routing.challenger),
            ("previous", routing.previous),
        ):
            if model is not None:
                self.models.labels(role, model.label).set(1.0)
        return bytes(generate_latest(self.registry))
