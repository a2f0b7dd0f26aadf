"""Monitoring: drift of inputs and outputs against the training reference, data quality
of event batches, Prometheus collectors of the stream workers, tracing and JSON logs,
and the monitoring page a service serves.

Not imported by ``import loopline``; the statistics use SciPy (the ``ml`` extra), the
collectors and tracing the ``serve`` extra.
"""

from loopline.monitoring.drift import Drift, FixedBins, categorical, compare, numeric, psi
from loopline.monitoring.monitor import (
    REFERENCE_FILE,
    DriftCollector,
    DriftEvent,
    DriftMonitor,
    DriftReport,
    DriftWatch,
    reference_of,
)
from loopline.monitoring.page import MonitorPage, Sampler
from loopline.monitoring.quality import BatchQuality, DataQualityError, Expectations
from loopline.monitoring.tracing import Tracing, json_logging
from loopline.monitoring.workers import WorkerCollector

__all__ = [
    "REFERENCE_FILE",
    "BatchQuality",
    "DataQualityError",
    "Drift",
    "DriftCollector",
    "DriftEvent",
    "DriftMonitor",
    "DriftReport",
    "DriftWatch",
    "Expectations",
    "FixedBins",
    "MonitorPage",
    "Sampler",
    "Tracing",
    "WorkerCollector",
    "categorical",
    "compare",
    "json_logging",
    "numeric",
    "psi",
    "reference_of",
]
