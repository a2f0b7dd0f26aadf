"""The real-time decision service: rules -> model -> decision -> action.

Importing this package imports the ONNX/LightGBM stack only when a model is loaded.
"""

from loopline.serving.api import Problem, Reason, RequestError, ScoreRequest, ScoreResponse
from loopline.serving.app import Limits, Service
from loopline.serving.auth import ApiKey, KeyRing, new_key
from loopline.serving.decisions import DecisionLog
from loopline.serving.model import ServingModel, load
from loopline.serving.rules import RuleBook, RuleSet, parse
from loopline.serving.scorer import Decided, Routing, Scorer

__all__ = [
    "ApiKey",
    "Decided",
    "DecisionLog",
    "KeyRing",
    "Limits",
    "Problem",
    "Reason",
    "RequestError",
    "Routing",
    "RuleBook",
    "RuleSet",
    "ScoreRequest",
    "ScoreResponse",
    "Scorer",
    "Service",
    "ServingModel",
    "load",
    "new_key",
    "parse",
]
