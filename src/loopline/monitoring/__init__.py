"""Monitoring: drift of features and scores against the training reference.

Not imported by ``import loopline``; the statistics use SciPy (the ``ml`` extra).
"""

from loopline.monitoring.drift import Drift, FixedBins, categorical, compare, numeric, psi

__all__ = ["Drift", "FixedBins", "categorical", "compare", "numeric", "psi"]
