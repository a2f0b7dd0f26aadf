"""Following a training from the launcher: rank 0 appends each step to the run's
``metrics.jsonl``; a thread here reads the new lines as they land and sends them to the
MLflow run and the progress bar. The launcher outlives a worker's crash, so the curve
goes on across torchrun's restarts (a resumed run's replayed steps are logged again,
with the same values when the resume is exact).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopline.registry.tracking import TrackedRun

POLL_S = 0.5
METRICS = ("loss", "grad_norm", "lr", "tokens_per_s", "seconds", "mfu", "memory_gib",
           "val_loss", "val_bits_per_byte")  # fmt: skip


class Follower(threading.Thread):
    """Reads ``log`` from its current end while the training runs (see the module);
    ``show(record)`` is called with each record (a step, or a ``started``/``resumed``
    event)."""

    def __init__(
        self, log: Path, *, tracked: TrackedRun | None, show: Callable[[dict[str, Any]], None]
    ) -> None:
        super().__init__(name="loopline-llm-follow", daemon=True)
        self.log, self.tracked, self.show = log, tracked, show
        self.offset = log.stat().st_size if log.exists() else 0
        self.restarts = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(POLL_S):
            self._read()
        self._read()

    def stop(self) -> None:
        """Read what is left and stop (after the training ended)."""
        self._done.set()
        self.join()
        if self.tracked is not None:
            self.tracked.flush()

    def _read(self) -> None:
        if not self.log.exists():
            return
        with self.log.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        whole = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits for its end
        self.offset += len(whole)
        for line in whole.splitlines():
            record = json.loads(line)
            if record.get("event") == "resumed":
                self.restarts += 1
            if self.tracked is not None and "loss" in record:
                values = {k: record[k] for k in METRICS if k in record}
                self.tracked.log(int(record["step"]), values, at_ms=int(record["time"] * 1000))
            self.show(record)
