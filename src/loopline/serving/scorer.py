"""The request path: request-time and online features -> model -> rules -> decision.

Everything here is synchronous (features from the online engine, the model in ONNX
Runtime); the HTTP layer awaits the decision log's group commit. On an embedded store a
batch is decided on the event loop; a scorer that only reads a remote store decides on a
thread of its own (:mod:`loopline.serving.batching`).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopline.features import FeatureSet, OnlineEngine
from loopline.features.derived import F64
from loopline.serving.api import Reason, ScoreRequest, ScoreResponse
from loopline.serving.model import ServingModel
from loopline.serving.pan import tokenize
from loopline.serving.resilience import CircuitBreaker
from loopline.serving.rules import RuleBook

LEARN_BATCH = 64
MAX_PENDING = 100_000  # decided transactions kept while the feature store is away
LEARN_EVERY_S = 0.02
# the most decided transactions one flush on the request path applies: the backlog of a
# store outage is caught up a chunk every LEARN_EVERY_S (measured: 3,600 at once held
# the event loop ~100 ms, past the request budget)
CATCH_UP = 128


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
    model_score: float | None = None  # before the rules adjusted it (None: rules only)


class Scorer:
    """Decides on transactions with a feature set, a routing of models and rules.

    ``learn``: whether decided transactions are folded into the online features here
    (one process owns the store: the embedded default). Scorers that share a Redis
    store do not learn: the feature workers that own its partitions do, from the
    transactions topic.
    """

    def __init__(
        self,
        *,
        feature_set: FeatureSet,
        engine: OnlineEngine,
        routing: Routing,
        rules: RuleBook,
        token_key: bytes,
        clock: Callable[[], float] = time.time,
        learn: bool = True,
    ) -> None:
        self.learns = learn
        self.feature_set = feature_set
        self.engine = engine
        self.routing = routing
        self.rules = rules
        self.token_key = token_key
        self.clock = clock
        self.feature_failures = 0
        self._pending: list[tuple[float, dict[str, np.ndarray]]] = []  # (since, columns)
        self._since = time.monotonic()
        self.store_breaker = CircuitBreaker("features")
        self.learn_failures = 0
        self.shadow_failures = 0

    def columns(self, requests: Sequence[ScoreRequest]) -> dict[str, np.ndarray]:
        """The requests as events' columns (card numbers replaced by their tokens)."""
        now = int(self.clock() * 1000)
        tokens = [r.card_token or tokenize(r.card_number or "", self.token_key) for r in requests]
        devices = [r.device_id or "" for r in requests]
        return {
            "transaction_id": np.array([r.transaction_id for r in requests]),
            "event_time_ms": np.array(
                [now if r.event_time_ms is None else r.event_time_ms for r in requests],
                dtype=np.int64,
            ),
            "card_token": np.array(tokens),
            "customer_id": np.array([r.customer_id for r in requests]),
            "terminal_id": np.array([r.terminal_id for r in requests]),
            "merchant_category": np.array([r.merchant_category for r in requests]),
            "amount": np.array([r.amount for r in requests], dtype=np.float64),
            "currency": np.array([r.currency for r in requests]),
            "channel": np.array([r.channel for r in requests]),
            "device_id": np.array(devices),
            "card_device": np.array(
                [f"{t}|{d}" if d else "" for t, d in zip(tokens, devices, strict=True)]
            ),
            "latitude": np.array([_num(r.latitude) for r in requests], dtype=np.float64),
            "longitude": np.array([_num(r.longitude) for r in requests], dtype=np.float64),
        }

    def decide(self, request: ScoreRequest, trace_id: str | None = None) -> Decided:
        return self.decide_many([request], [trace_id or uuid.uuid4().hex])[0]

    def decide_many(
        self, requests: Sequence[ScoreRequest], trace_ids: Sequence[str]
    ) -> list[Decided]:
        """Decide on several requests at once: one feature read per view, one model call
        per model; rules and responses per request. A request's timings are its batch's."""
        if self._pending and time.monotonic() - self._since >= LEARN_EVERY_S:
            self.flush(CATCH_UP)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        cols = self.columns(requests)
        degraded: list[str] = []
        values = self._features(cols, degraded)
        _lap(timings, "features", started)
        return self.decide_columns(
            cols, values, trace_ids, degraded=degraded, timings=timings, started=started
        )

    def decide_columns(
        self,
        cols: dict[str, np.ndarray],
        values: dict[str, F64],
        trace_ids: Sequence[str],
        *,
        degraded: list[str] | None = None,
        timings: dict[str, float] | None = None,
        started: float | None = None,
    ) -> list[Decided]:
        """Decide on events given as columns with their features (the request path's
        second half, and the streaming scorer's): routing, model, shadow, rules,
        explanations, responses."""
        degraded = [] if degraded is None else degraded
        timings = {} if timings is None else timings
        mark = time.perf_counter()
        started = mark if started is None else started
        n = len(trace_ids)
        routing = copy.copy(self.routing)  # one batch, one routing (admin may change it)
        picks = [routing.pick(t) for t in cols["card_token"].tolist()]
        unknown = np.full(n, math.nan)
        scores = np.empty(n)
        label_of: list[str] = [""] * n
        degraded_of: list[list[str]] = [degraded] * n
        x_of: dict[int, np.ndarray] = {}  # id(model) -> its rows' inputs
        shadow: np.ndarray | None = None
        models = {id(m): m for m, _ in picks}
        for model in models.values():
            rows = [i for i, (m, _) in enumerate(picks) if m is model]
            x = _columns([values.get(f, unknown) for f in model.features])
            if len(models) > 1:
                x = x[rows]
            x_of[id(model)] = x
            said = list(degraded)
            got, label = self._score(model, routing.previous, x, said)
            scores[rows] = got
            for i in rows:
                label_of[i], degraded_of[i] = label, said
        mark = _lap(timings, "model", mark)
        challenger = routing.challenger
        if routing.shadow and challenger is not None:
            champion_rows = [i for i, (_, arm) in enumerate(picks) if arm == "champion"]
            if champion_rows:
                shadow = np.full(n, math.nan)
                x = _columns([values.get(f, unknown) for f in challenger.features])
                try:
                    shadow[champion_rows] = challenger.score(x[champion_rows])[0]
                except Exception:  # a failing shadow is logged as unscored, never served
                    self.shadow_failures += 1
                mark = _lap(timings, "shadow", mark)
        rules = self.rules.current()
        needed = {f: values[f] if f in values else cols[f] for f in rules.fields_in(values, cols)}
        names = list(values)
        matrix = _columns([values[k] for k in names]).tolist() if names else [[]] * n
        row_in_model = {id(m): 0 for m, _ in picks}
        ids = cols["transaction_id"].tolist()
        out: list[Decided] = []
        for i, (model, arm) in enumerate(picks):
            k = row_in_model[id(model)]
            row_in_model[id(model)] += 1
            outcome = rules.apply(float(scores[i]), {f: c[i] for f, c in needed.items()})
            decision = model.decision(outcome.score, blocked=outcome.blocked_by is not None)
            reasons = [Reason("rule", r) for r in outcome.fired]
            if decision != "approve" and label_of[i] == model.label:  # explain where read
                x = x_of[id(model)][k : k + 1]
                reasons += [Reason("feature", f, round(v, 4)) for f, v in model.contributions(x)]
            watched = None if shadow is None or math.isnan(shadow[i]) else float(shadow[i])
            response = ScoreResponse(
                transaction_id=ids[i],
                decision=decision,
                score=round(outcome.score, 6),
                reasons=reasons,
                model_version=label_of[i],
                rules_version=rules.version,
                trace_id=trace_ids[i],
                timings_ms=timings,
                degraded=degraded_of[i],
            )
            out.append(
                Decided(
                    response,
                    dict(zip(names, matrix[i], strict=True)),
                    arm,
                    watched,
                    # shadowed (its score None where the challenger failed), or not
                    challenger.label
                    if shadow is not None and challenger and arm == "champion"
                    else None,
                    {c: v[i : i + 1] for c, v in cols.items()},
                    None if label_of[i] == "rules-only" else float(scores[i]),
                )
            )
        _lap(timings, "rules", mark)
        timings["total"] = round((time.perf_counter() - started) * 1000, 3)
        return out

    def _features(self, cols: dict[str, np.ndarray], degraded: list[str]) -> dict[str, F64]:
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
                return {k: np.asarray(v, dtype=np.float64) for k, v in features.items()}
        self.feature_failures += 1
        degraded.append("features_unavailable")
        return self._defaults(cols)

    def _score(
        self,
        model: ServingModel,
        previous: ServingModel | None,
        x: np.ndarray,
        degraded: list[str],
    ) -> tuple[F64, str]:
        """Ordered fallbacks: ONNX, then LightGBM native (same version), then the previous
        version; with no stored features, or no model left, the rules alone decide."""
        if "features_unavailable" in degraded:
            degraded.append("rules_only")
            return np.zeros(len(x)), "rules-only"
        for candidate in (model, previous):
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
            return np.asarray(scores, dtype=np.float64), candidate.label
        degraded.append("rules_only")
        return np.zeros(len(x)), "rules-only"

    def learn(self, decided: Decided) -> None:
        """Fold the decided transaction into the online features. Applied in micro-batches
        (every ``LEARN_BATCH`` decisions or ``LEARN_EVERY_S``, whichever first): applying
        one event costs about what 64 do. A card's next transaction within that moment
        may not see this one yet. A backlog (the store was away) is applied ``CATCH_UP``
        at a time, one chunk every ``LEARN_EVERY_S``."""
        if not self.learns:
            return
        now = time.monotonic()
        self._pending.append((now, decided.columns))
        due = now - self._since >= LEARN_EVERY_S
        if due or len(self._pending) == LEARN_BATCH:
            self.flush(CATCH_UP)

    @property
    def only_reads_remote(self) -> bool:
        """Whether deciding only reads a remote store (it learns nothing): safe to run
        on a thread of its own while the event loop goes on."""
        return not self.learns and self.engine.remote

    @property
    def pending(self) -> int:
        """Decided transactions not yet applied to the online features."""
        return len(self._pending)

    def learn_lag_s(self) -> float:
        """How long the oldest decided transaction not yet applied has waited (0: none)."""
        return time.monotonic() - self._pending[0][0] if self._pending else 0.0

    def flush(self, limit: int | None = None) -> None:
        """Apply the pending decided transactions to the online features now, oldest
        first (``limit``: at most that many; the rest wait for the next flush)."""
        self._since = time.monotonic()
        if not self._pending:
            return
        if not self.store_breaker.allow():
            del self._pending[:-MAX_PENDING]  # bounded while the store is away
            return
        chunk = [columns for _, columns in self._pending[:limit]]
        batch = {k: np.concatenate([c[k] for c in chunk]) for k in chunk[0]}
        try:
            self.engine.apply_many(batch, topic=self.feature_set.source.topic)
            self.engine.commit(0)  # the store snapshots on its own schedule
        except Exception:  # kept for the next flush; decisions are unaffected
            self.store_breaker.record(False)
            self.learn_failures += 1
            return
        del self._pending[: len(chunk)]

    def _defaults(self, cols: dict[str, np.ndarray]) -> dict[str, F64]:
        """Request-time features only; every stored feature unknown (NaN)."""
        n = len(cols["transaction_id"])
        out = {name: np.full(n, math.nan) for name in self.feature_set.names}
        for r in self.feature_set.request:
            out[r.name] = np.asarray(r.compute(cols), dtype=np.float64)
        return out


def _columns(columns: list[F64]) -> F64:
    """Equal-length columns as the rows of one matrix (np.column_stack costs ~2 µs a
    column; one array build and a transpose do not)."""
    return np.ascontiguousarray(np.array(columns, dtype=np.float64).T)


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
