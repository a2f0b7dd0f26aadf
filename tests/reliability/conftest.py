from tests.fraud.conftest import fraud_registry

__all__ = ["fraud_registry"]
