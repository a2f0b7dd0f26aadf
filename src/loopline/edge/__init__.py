"""Fleets of devices: signed over-the-air packages (:mod:`loopline.edge.package`), a
device's A/B slots with automatic rollback (:mod:`loopline.edge.slots`), staged rollouts
gated by cohort (:mod:`loopline.edge.rollout`), the device's upload queue
(:mod:`loopline.edge.uploads`) and its real-time pipeline of stages under a deadline
(:mod:`loopline.edge.stages`).

Packages are signed with the registry's ed25519 keys (:class:`loopline.registry.Keys`) over
their own domain. The upload queue imports nothing heavy; the package, slot and rollout names
import ``cryptography`` when first used, and the stages NumPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loopline.edge.uploads import Upload, UploadCounters, UploadQueue

if TYPE_CHECKING:
    from loopline.edge.package import (
        PACKAGE_DOMAIN,
        EdgeError,
        PackageManifest,
        UntrustedPackageError,
        VerifiedPackage,
        build_package,
        open_package,
    )
    from loopline.edge.rollout import (
        Device,
        Fleet,
        Report,
        Rollout,
        RolloutPlan,
        StageResult,
        cohort,
    )
    from loopline.edge.slots import HealthCheck, SlotEvent, Slots, SlotStatus
    from loopline.edge.stages import Stage, StagePipeline, pinned

__all__ = [
    "PACKAGE_DOMAIN", "Device", "EdgeError", "Fleet", "HealthCheck", "PackageManifest",
    "Report", "Rollout", "RolloutPlan", "SlotEvent", "SlotStatus", "Slots", "Stage",
    "StagePipeline", "StageResult", "UntrustedPackageError", "Upload", "UploadCounters",
    "UploadQueue", "VerifiedPackage", "build_package", "cohort", "open_package", "pinned",
]  # fmt: skip

_LAZY = {
    "package": ("PACKAGE_DOMAIN", "EdgeError", "PackageManifest", "UntrustedPackageError",
                "VerifiedPackage", "build_package", "open_package"),
    "rollout": ("Device", "Fleet", "Report", "Rollout", "RolloutPlan", "StageResult", "cohort"),
    "slots": ("HealthCheck", "SlotEvent", "SlotStatus", "Slots"),
    "stages": ("Stage", "StagePipeline", "pinned"),
}  # fmt: skip


def __getattr__(name: str) -> Any:  # names whose modules import cryptography, on first use
    for module, names in _LAZY.items():
        if name in names:
            return getattr(importlib.import_module(f"loopline.edge.{module}"), name)
    raise AttributeError(f"module 'loopline.edge' has no attribute {name!r}")
