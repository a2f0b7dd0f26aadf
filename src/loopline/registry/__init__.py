"""The model registry (MLflow): versions with lineage, aliases, promotion and rollback,
the bundle format of a version's files (:mod:`loopline.registry.bundle`), and their
signatures (:mod:`loopline.registry.signing`): serving loads only what a trusted key
signed, and refuses anything else with :class:`UntrustedModelError`.

The bundle types import no MLflow; :class:`Registry` and :class:`ModelVersion` import
it when first used, and :class:`Keys` imports ``cryptography`` (``import loopline``
never does either).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopline.registry.bundle import Bundle, Pinned, RegistryError, Signature, UntrustedModelError

if TYPE_CHECKING:
    from loopline.registry.signing import Keys
    from loopline.registry.store import ModelVersion, Registry, Step

__all__ = [
    "Bundle", "Keys", "ModelVersion", "Pinned", "Registry", "RegistryError", "Signature", "Step",
    "UntrustedModelError",
]  # fmt: skip


def __getattr__(name: str) -> Any:  # the names of heavy imports, imported on first use
    if name in ("ModelVersion", "Registry", "Step"):
        from loopline.registry import store

        return getattr(store, name)
    if name == "Keys":
        from loopline.registry import signing

        return signing.Keys
    raise AttributeError(f"module 'loopline.registry' has no attribute {name!r}")
