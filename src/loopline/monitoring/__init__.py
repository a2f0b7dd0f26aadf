"""Monitoring: drift of inputs and outputs against the training reference, data quality
of event batches, Prometheus collectors of the stream workers, tracing and JSON logs,
the monitoring page a service serves, and a watchdog of heartbeats reduced to one health
state.

Not imported by ``import loopline``. Each name is imported from its module on first use,
so that the feature worker's data-quality checks do not pull in SciPy (drift, the
``ml`` extra) or Prometheus and OpenTelemetry (the ``serve`` extra).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for the type checker
    from loopline.monitoring.drift import (
        Drift,
        FixedBins,
        categorical,
        compare,
        numeric,
        psi,
    )
    from loopline.monitoring.monitor import (
        REFERENCE_FILE,
        DriftCollector,
        DriftEvent,
        DriftMonitor,
        DriftReport,
        DriftWatch,
        reference_of,
    )
    from loopline.monitoring.page import (
        MonitorPage,
        Sampler,
    )
    from loopline.monitoring.quality import (
        BatchQuality,
        DataQualityError,
        Expectations,
    )
    from loopline.monitoring.tracing import (
        Tracing,
        json_logging,
    )
    from loopline.monitoring.watchdog import (
        Change,
        Health,
        Level,
        Status,
        Watchdog,
        monotonic_ms,
    )
    from loopline.monitoring.workers import (
        WorkerCollector,
    )

_MODULES = {
    "drift": ("Drift", "FixedBins", "categorical", "compare", "numeric", "psi"),
    "monitor": (
        "REFERENCE_FILE", "DriftCollector", "DriftEvent", "DriftMonitor", "DriftReport",
        "DriftWatch", "reference_of",
    ),
    "page": ("MonitorPage", "Sampler"),
    "quality": ("BatchQuality", "DataQualityError", "Expectations"),
    "tracing": ("Tracing", "json_logging"),
    "watchdog": ("Change", "Health", "Level", "Status", "Watchdog", "monotonic_ms"),
    "workers": ("WorkerCollector",),
}  # fmt: skip
_HOME = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "REFERENCE_FILE",
    "BatchQuality",
    "Change",
    "DataQualityError",
    "Drift",
    "DriftCollector",
    "DriftEvent",
    "DriftMonitor",
    "DriftReport",
    "DriftWatch",
    "Expectations",
    "FixedBins",
    "Health",
    "Level",
    "MonitorPage",
    "Sampler",
    "Status",
    "Tracing",
    "Watchdog",
    "WorkerCollector",
    "categorical",
    "compare",
    "json_logging",
    "monotonic_ms",
    "numeric",
    "psi",
    "reference_of",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'loopline.monitoring' has no attribute {name!r}")
    return getattr(importlib.import_module(f"loopline.monitoring.{module}"), name)
