"""The fraud request path on the serving kernel: a transaction's columns -> online
features -> the routed model (:class:`loopline.serving.TabularScorer`) -> the rules ->
the decision (approve, review, decline at the model's thresholds) -> the response with
its reasons.

The same second half answers the streaming scorer's micro-batches
(:meth:`FraudPipeline.predict_columns`).
"""

from __future__ import annotations

import functools
import math
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from loopline.apps.fraud.api import Decision, Reason, ScoreRequest, ScoreResponse
from loopline.apps.fraud.privacy import tokenize
from loopline.models import Explains, ServingModel
from loopline.predictions import Column
from loopline.serving import (
    NO_MODEL,
    Prediction,
    Routing,
    RuleBook,
    TabularScorer,
    as_rows,
    lap,
)

F64 = npt.NDArray[np.float64]
# the prediction log's fraud columns (beside its generic ones: the card token is the
# routing key, the transaction id the request id)
COLUMNS = (
    Column("decision", "TEXT", index=True),
    Column("score", "REAL"),
    Column("rules_version"),
    Column("customer_id", index=True),  # the data subject: what an erasure looks for
)


def decide(model: ServingModel, score: float, *, blocked: bool) -> Decision:
    """The model's operating point applied to a (rule-adjusted) score: decline at or
    above its threshold, review at or above its review threshold."""
    meta = model.signature.meta
    if blocked or score >= meta["threshold"]:
        return "decline"
    return "review" if score >= meta["review_threshold"] else "approve"


def flags(model: ServingModel, score: float) -> bool:
    """Whether ``model``'s score alone would flag (review or decline)."""
    return bool(score >= model.signature.meta["review_threshold"])


class FraudPipeline:
    """Decides on transactions with ``tabular``'s features and models and ``rules``."""

    def __init__(self, *, tabular: TabularScorer, rules: RuleBook, token_key: bytes) -> None:
        self.tabular = tabular
        self.rules = rules
        self.token_key = token_key

    @property
    def clock(self) -> Callable[[], float]:
        return self.tabular.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.tabular.clock = clock

    def request_id(self, request: ScoreRequest) -> str:
        return request.transaction_id

    def fingerprint(self, request: ScoreRequest) -> Any:
        body = msgspec.to_builtins(request)
        if body.get("card_number"):  # never hash a card number itself
            body["card_token"] = tokenize(body.pop("card_number"), self.token_key)
        return body

    def columns(self, requests: Sequence[ScoreRequest]) -> dict[str, np.ndarray]:
        """The requests as events' columns (card numbers replaced by their tokens)."""
        now = int(self.tabular.clock() * 1000)
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

    def decide(self, request: ScoreRequest, routing: Routing) -> Prediction[ScoreResponse]:
        return self.predict_many([request], [uuid.uuid4().hex], routing)[0]

    def predict_many(
        self, requests: Sequence[ScoreRequest], trace_ids: Sequence[str], routing: Routing
    ) -> list[Prediction[ScoreResponse]]:
        """Decide on several requests at once: one feature read per view, one model call
        per model; rules and responses per request. A request's timings are its batch's."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        cols = self.columns(requests)
        degraded: list[str] = []
        values = self.tabular.features(cols, degraded)
        lap(timings, "features", started)
        return self.predict_columns(
            cols, values, trace_ids, routing, degraded=degraded, timings=timings, started=started
        )

    def predict_columns(
        self,
        cols: dict[str, np.ndarray],
        values: dict[str, F64],
        trace_ids: Sequence[str],
        routing: Routing,
        *,
        degraded: list[str] | None = None,
        timings: dict[str, float] | None = None,
        started: float | None = None,
    ) -> list[Prediction[ScoreResponse]]:
        """Decide on events given as columns with their features (the request path's
        second half, and the streaming scorer's): model, shadow, rules, explanations,
        responses."""
        degraded = [] if degraded is None else degraded
        timings = {} if timings is None else timings
        mark = time.perf_counter()
        started = mark if started is None else started
        scored = self.tabular.score(cols, values, routing, degraded)
        mark = lap(timings, "model", mark)
        shadow = self.tabular.shadow(values, routing, scored.picks)
        if shadow is not None:
            mark = lap(timings, "shadow", mark)
        rules = self.rules.current()
        needed = {f: values[f] if f in values else cols[f] for f in rules.fields_in(values, cols)}
        outcomes = rules.apply_many(np.asarray(scored.scores, dtype=np.float64), needed)
        adjusted, blocked_by = outcomes.scores.tolist(), outcomes.blocked_by
        names = list(values)
        n = len(trace_ids)
        matrix = as_rows([values[k] for k in names]).tolist() if names else [[]] * n
        ids, tokens = cols["transaction_id"].tolist(), cols["card_token"].tolist()
        customers = cols["customer_id"].tolist()
        challenger = routing.challenger
        out: list[Prediction[ScoreResponse]] = []
        for i, (model, arm) in enumerate(scored.picks):
            label = scored.labels[i]
            model_score = None if label == NO_MODEL else float(scored.scores[i])
            decision = decide(model, adjusted[i], blocked=blocked_by[i] is not None)
            reasons = [Reason("rule", r) for r in outcomes.fired[i]]
            if decision != "approve" and label == model.label and _explains(type(model)):
                contributions = model.contributions(scored.x(i))  # type: ignore[attr-defined]
                reasons += [Reason("feature", f, round(v, 4)) for f, v in contributions]
            score = round(adjusted[i], 6)
            response = ScoreResponse(
                transaction_id=ids[i], decision=decision, score=score, reasons=reasons,
                model_version=label, rules_version=rules.version, trace_id=trace_ids[i],
                timings_ms=timings, degraded=scored.degraded[i],
            )  # fmt: skip
            shadowed = shadow is not None and challenger is not None and arm == "champion"
            watched = None if not shadowed or math.isnan(shadow[i]) else float(shadow[i])  # type: ignore[index]
            out.append(
                Prediction(
                    response=response,
                    request_id=ids[i],
                    routing_key=tokens[i],
                    model_version=label,
                    arm=arm,
                    inputs=dict(zip(names, matrix[i], strict=True)),
                    outputs={"score": score, "model_score": model_score, "decision": decision},
                    outcome=decision,
                    positive=decision != "approve",
                    degraded=scored.degraded[i],
                    timings_ms=timings,
                    shadow_model=challenger.label if shadowed else None,  # type: ignore[union-attr]
                    shadow_outputs=None if watched is None else {"model_score": watched},
                    shadow_positive=(
                        None
                        if watched is None or model_score is None
                        else (flags(model, model_score), flags(challenger, watched))  # type: ignore[arg-type]
                    ),
                    columns={
                        "decision": decision,
                        "score": score,
                        "rules_version": rules.version,
                        "customer_id": customers[i],
                    },
                    state=(cols, i),  # the row to learn from, sliced only if committed
                )
            )
        lap(timings, "rules", mark)
        timings["total"] = round((time.perf_counter() - started) * 1000, 3)
        return out

    def committed(self, prediction: Prediction[ScoreResponse]) -> None:
        """Fold the decided transaction into the online features (micro-batched)."""
        cols, i = prediction.state
        self.tabular.learn({c: v[i : i + 1] for c, v in cols.items()})

    def close(self) -> None:
        """Decided transactions into the features before the service exits."""
        self.tabular.learner.flush()


@functools.cache
def _explains(kind: type) -> bool:
    """Whether models of ``kind`` explain their scores (asked once a class: a runtime
    protocol check costs ~100 us, more than the explanation itself)."""
    return issubclass(kind, Explains)


def _num(value: float | None) -> float:
    return math.nan if value is None else float(value)
