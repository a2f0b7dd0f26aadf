"""The model registry (MLflow): versions with lineage, aliases, promotion and rollback,
and the bundle format of a version's files (:mod:`loopline.registry.bundle`).

The bundle types import no MLflow; :class:`Registry` and :class:`ModelVersion` import
it when first used (``import loopline`` never does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopline.registry.bundle import Bundle, Pinned, RegistryError, Signature

if TYPE_CHECKING:
    from loopline.registry.store import ModelVersion, Registry, Step

__all__ = ["Bundle", "ModelVersion", "Pinned", "Registry", "RegistryError", "Signature", "Step"]


def __getattr__(name: str) -> Any:  # the MLflow-backed names, imported on first use
    if name in ("ModelVersion", "Registry", "Step"):
        from loopline.registry import store

        return getattr(store, name)
    raise AttributeError(f"module 'loopline.registry' has no attribute {name!r}")
