"""The serving kernel: an application's endpoints served with authentication, limits,
idempotency, batching or streaming, routing (shadow, canary, A/B, blue-green),
fallbacks, a durable prediction log, metrics, tracing and admin routes.

An application brings :class:`Endpoint` s (request and response types, a
:class:`Pipeline` or :class:`StreamingPipeline`) and a :class:`Deployment` of models;
:class:`Service` is the ASGI application. :class:`TabularScorer` is the request path of
a model on online features, for applications whose requests are events. Importing this
package imports no ML library; models load through :mod:`loopline.models`.
"""

from loopline.serving.auth import ApiKey, KeyRing, new_key
from loopline.serving.canary import CanaryGuard
from loopline.serving.endpoint import Endpoint, Pipeline, Prediction, StreamingPipeline
from loopline.serving.fallbacks import NO_MODEL, predict_ordered
from loopline.serving.idempotency import payload_hash
from loopline.serving.jobs import Jobs
from loopline.serving.limits import Limits
from loopline.serving.local import running
from loopline.serving.loop import every
from loopline.serving.openapi import openapi_document
from loopline.serving.outbox import Outbox, OutboxCollector
from loopline.serving.problems import Problem, RequestError, refuse
from loopline.serving.quota import Quota
from loopline.serving.resilience import CircuitBreaker
from loopline.serving.routing import Deployment, Routing
from loopline.serving.rules import Outcome, RuleBook, RuleSet, parse
from loopline.serving.service import CURRENT_CALLER, Service
from loopline.serving.stream import ColumnPipeline, StreamScorer
from loopline.serving.tabular import Scored, TabularCollector, TabularScorer, as_rows, lap
from loopline.serving.telemetry import Metrics

__all__ = [
    "CURRENT_CALLER",
    "NO_MODEL",
    "ApiKey",
    "CanaryGuard",
    "CircuitBreaker",
    "ColumnPipeline",
    "Deployment",
    "Endpoint",
    "Jobs",
    "KeyRing",
    "Limits",
    "Metrics",
    "Outbox",
    "OutboxCollector",
    "Outcome",
    "Pipeline",
    "Prediction",
    "Problem",
    "Quota",
    "RequestError",
    "Routing",
    "RuleBook",
    "RuleSet",
    "Scored",
    "Service",
    "StreamScorer",
    "StreamingPipeline",
    "TabularCollector",
    "TabularScorer",
    "as_rows",
    "every",
    "lap",
    "new_key",
    "openapi_document",
    "parse",
    "payload_hash",
    "predict_ordered",
    "refuse",
    "running",
]
