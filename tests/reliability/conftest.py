from tests.serving.conftest import fraud_registry

__all__ = ["fraud_registry"]
