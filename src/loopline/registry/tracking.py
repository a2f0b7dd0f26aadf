"""A training run's live record in MLflow: its parameters first, then each step's
metrics as they come, and how it ended.

A long training logs thousands of points: :class:`TrackedRun` buffers them and sends
them in batches (MLflow takes at most 1,000 metrics a call), at most every
``flush_s`` seconds, so a slow tracking server never holds the trainer. The version
registered from the training names the same run (``Registry.register(run=...)``), so
its curves and its files stay together.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mlflow.entities import Metric, Param

BATCH = 1000  # MLflow's most metrics in one log_batch


class TrackedRun:
    """An open MLflow run of ``client`` that metrics are logged to, step by step."""

    def __init__(self, client: Any, run_id: str, *, flush_s: float = 2.0) -> None:
        self.client = client
        self.run_id = run_id
        self.flush_s = flush_s
        self._pending: list[Metric] = []
        self._flushed = time.monotonic()

    def log_params(self, params: Mapping[str, object]) -> None:
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's most params in one call
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log(self, step: int, metrics: Mapping[str, float], *, at_ms: int | None = None) -> None:
        """Queue one step's metrics (non-finite values are MLflow's to store as they
        are); sent at the next flush, or now if ``flush_s`` has passed."""
        when = int(time.time() * 1000) if at_ms is None else at_ms
        self._pending += [Metric(k, float(v), when, step) for k, v in metrics.items()]
        if time.monotonic() - self._flushed >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for i in range(0, len(pending), BATCH):
            self.client.log_batch(self.run_id, metrics=pending[i : i + BATCH])
        self._flushed = time.monotonic()

    def history(self, key: str) -> list[tuple[int, float]]:
        """The logged (step, value) points of one metric, in step order."""
        got = self.client.get_metric_history(self.run_id, key)
        return sorted((int(m.step), float(m.value)) for m in got)

    def finish(self, status: str = "FINISHED") -> None:
        """Send what is queued and close the run (``FINISHED``, ``FAILED`` or
        ``KILLED``)."""
        self.flush()
        self.client.set_terminated(self.run_id, status=status)
