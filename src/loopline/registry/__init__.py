"""The model registry (MLflow): versions with lineage, aliases, promotion and rollback.

Importing this package imports MLflow; ``import loopline`` does not.
"""

from loopline.registry.store import ModelVersion, Pinned, Registry, RegistryError, Step

__all__ = ["ModelVersion", "Pinned", "Registry", "RegistryError", "Step"]
