"""The request path: request-time and online features -> model -> rules -> decision.

Everything here is synchronous and in memory (features from the online engine, the model
in ONNX Runtime); the only wait on the request path is the decision log's group commit,
which the HTTP layer awaits.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopline.features import FeatureSet, OnlineEngine
from loopline.serving.api import Reason, ScoreRequest, ScoreResponse
from loopline.serving.model import ServingModel
from loopline.serving.pan import tokenize
from loopline.serving.resilience import CircuitBreaker
from loopline.serving.rules import RuleBook

LEARN_BATCH = 32
MAX_PENDING = 100_000  # decided transactions kept while the feature store is away
LEARN_EVERY_S = 0.005


@dataclass
class Routing:
    """Which model answers, and which one only watches.

    ``champion`` answers by default. With a ``challenger``: ``canary_percent`` of cards
    (a stable hash of the card token, so a card stays on one side) are answered by it;
    ``shadow`` scores every request with it too, logged and never returned.
    """

    champion: ServingModel
    challenger: ServingModel | None = None
    canary_percent: float = 0.0
    shadow: bool = False
    previous: ServingModel | None = None  # kept loaded for an instant rollback

    def pick(self, card_token: str) -> tuple[ServingModel, str]:
        if self.challenger is not None and self.canary_percent > 0:
            bucket = int.from_bytes(hashlib.blake2b(card_token.encode(), digest_size=4).digest())
            if bucket % 10_000 < self.canary_percent * 100:
                return self.challenger, "challenger"
        return self.champion, "champion"


@dataclass
class Decided:
    """A decision and what the prediction log keeps of it."""

    response: ScoreResponse
    features: dict[str, float]
    arm: str
    shadow_score: float | None = None
    shadow_model: str | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)


class Scorer:
    """Decides on transactions with a feature set, a routing of models and rules."""

    def __init__(
        self,
        *,
        feature_set: FeatureSet,
        engine: OnlineEngine,
        routing: Routing,
        rules: RuleBook,
        token_key: bytes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.feature_set = feature_set
        self.engine = engine
        self.routing = routing
        self.rules = rules
        self.token_key = token_key
        self.clock = clock
        self.feature_failures = 0
        self._pending: list[dict[str, np.ndarray]] = []
        self._since = time.monotonic()
        self.store_breaker = CircuitBreaker("features")
        self.learn_failures = 0

    def columns(self, request: ScoreRequest) -> dict[str, np.ndarray]:
        """The request as one event's columns (the card number replaced by its token)."""
        token = request.card_token or tokenize(request.card_number or "", self.token_key)
        t = request.event_time_ms if request.event_time_ms is not None else int(self.clock() * 1000)
        device = request.device_id or ""
        return {
            "transaction_id": np.array([request.transaction_id]),
            "event_time_ms": np.array([t], dtype=np.int64),
            "card_token": np.array([token]),
            "customer_id": np.array([request.customer_id]),
            "terminal_id": np.array([request.terminal_id]),
            "merchant_category": np.array([request.merchant_category]),
            "amount": np.array([request.amount]),
            "currency": np.array([request.currency]),
            "channel": np.array([request.channel]),
            "device_id": np.array([device]),
            "card_device": np.array([f"{token}|{device}" if device else ""]),
            "latitude": np.array([_num(request.latitude)]),
            "longitude": np.array([_num(request.longitude)]),
        }

    def decide(self, request: ScoreRequest, trace_id: str | None = None) -> Decided:
        if self._pending and time.monotonic() - self._since >= LEARN_EVERY_S:
            self.flush()
        timings: dict[str, float] = {}
        started = mark = time.perf_counter()
        cols = self.columns(request)
        degraded: list[str] = []
        values = self._features(cols, degraded)
        mark = _lap(timings, "features", mark)
        model, arm = self.routing.pick(str(cols["card_token"][0]))
        x = np.array([[values.get(n, math.nan) for n in model.features]])
        score, label = self._score(model, x, degraded)
        mark = _lap(timings, "model", mark)
        shadow_score = shadow_model = None
        if self.routing.shadow and self.routing.challenger is not None and arm == "champion":
            shadow_score = float(self.routing.challenger.score(x)[0][0])
            shadow_model = self.routing.challenger.label
            mark = _lap(timings, "shadow", mark)
        rules = self.rules.current()
        seen = {f: values[f] if f in values else cols[f][0] for f in rules.fields_in(values, cols)}
        outcome = rules.apply(score, seen)
        decision = model.decision(outcome.score, blocked=outcome.blocked_by is not None)
        reasons = [Reason("rule", r) for r in outcome.fired]
        if decision != "approve" and label == model.label:  # explanations: only where read
            reasons += [Reason("feature", n, round(v, 4)) for n, v in model.contributions(x)]
        mark = _lap(timings, "rules", mark)
        timings["total"] = round((time.perf_counter() - started) * 1000, 3)
        response = ScoreResponse(
            transaction_id=request.transaction_id,
            decision=decision,
            score=round(outcome.score, 6),
            reasons=reasons,
            model_version=label,
            rules_version=rules.version,
            trace_id=trace_id or uuid.uuid4().hex,
            timings_ms=timings,
            degraded=degraded,
        )
        return Decided(response, values, arm, shadow_score, shadow_model, cols)

    def _features(self, cols: dict[str, np.ndarray], degraded: list[str]) -> dict[str, float]:
        """Online features through the store's breaker; defaults when it is open or fails."""
        breaker = self.store_breaker
        if breaker.allow():
            started = time.perf_counter()
            try:
                features = self.feature_set.online(self.engine, cols)
            except Exception:  # a store failure degrades, never a 5xx
                breaker.record(False)
            else:
                breaker.record(True, time.perf_counter() - started)
                return {k: float(v[0]) for k, v in features.items()}
        self.feature_failures += 1
        degraded.append("features_unavailable")
        return self._defaults(cols)

    def _score(self, model: ServingModel, x: np.ndarray, degraded: list[str]) -> tuple[float, str]:
        """Ordered fallbacks: ONNX, then LightGBM native (same version), then the previous
        version; with no stored features, or no model left, the rules alone decide."""
        if "features_unavailable" in degraded:
            degraded.append("rules_only")
            return 0.0, "rules-only"
        for candidate in (model, self.routing.previous):
            if candidate is None:
                continue
            try:
                scores, fell_back = candidate.score(x)
            except Exception:  # both engines failed: try the next version
                degraded.append(f"model_error:{candidate.label}")
                continue
            if fell_back:
                degraded.append("model_fallback")
            if candidate is not model:
                degraded.append("previous_model")
            return float(scores[0]), candidate.label
        degraded.append("rules_only")
        return 0.0, "rules-only"

    def learn(self, decided: Decided) -> None:
        """Fold the decided transaction into the online features. Applied in micro-batches
        (every ``LEARN_BATCH`` decisions or ``LEARN_EVERY_S``, whichever first): applying
        one event costs about what 32 do. A card's next transaction within that moment
        may not see this one yet."""
        self._pending.append(decided.columns)
        if len(self._pending) >= LEARN_BATCH or time.monotonic() - self._since >= LEARN_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Apply the pending decided transactions to the online features now."""
        if not self._pending:
            self._since = time.monotonic()
            return
        self._since = time.monotonic()
        if not self.store_breaker.allow():
            del self._pending[:-MAX_PENDING]  # bounded while the store is away
            return
        batch = {k: np.concatenate([p[k] for p in self._pending]) for k in self._pending[0]}
        try:
            self.engine.apply_many(batch, topic=self.feature_set.source.topic)
            self.engine.commit(0)  # the store snapshots on its own schedule
        except Exception:  # kept for the next flush; decisions are unaffected
            self.store_breaker.record(False)
            self.learn_failures += 1
            return
        self._pending.clear()

    def _defaults(self, cols: dict[str, np.ndarray]) -> dict[str, float]:
        """Request-time features only; every stored feature unknown (NaN)."""
        out = dict.fromkeys(self.feature_set.names, math.nan)
        for r in self.feature_set.request:
            out[r.name] = float(r.compute(cols)[0])
        return out


def _num(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _lap(timings: dict[str, float], name: str, mark: float) -> float:
    now = time.perf_counter()
    timings[name] = round((now - mark) * 1000, 3)
    return now


def payload_hash(body: dict[str, Any]) -> str:
    """The idempotency fingerprint of a request body (key order does not matter)."""
    import msgspec

    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()
