"""Real-time card-fraud detection, the flagship application."""

from loopline.apps.fraud.events import Transaction, random_transactions

__all__ = ["Transaction", "random_transactions"]
