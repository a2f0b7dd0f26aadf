"""Real-time card-fraud detection, the flagship application."""

from loopline.apps.fraud.events import Transaction, random_transactions
from loopline.apps.fraud.features import fraud_feature_set, fraud_views

__all__ = ["Transaction", "fraud_feature_set", "fraud_views", "random_transactions"]
