"""``loopline train llm``: prepare the data once, then start ``torchrun`` with one
worker per GPU (or two CPU processes) and restarts on failure."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from loopline.exceptions import ConfigError
from loopline.llm.data import prepare
from loopline.llm.settings import load


def default_processes() -> int:
    """One per GPU; on a machine without one, two CPU processes (at most its cores)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.device_count()
    return max(1, min(2, os.cpu_count() or 1))


def launch(
    config: Path,
    *,
    processes: int | None = None,
    max_restarts: int = 3,
    env: Mapping[str, str] | None = None,
) -> int:
    """Train with the settings in ``config``; return torchrun's exit status."""
    settings = load(config)
    prepare(settings.data, vocab_size=settings.vocab_size)  # one writer, before the ranks
    n = processes or default_processes()
    _check_devices(n)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={n}", f"--max-restarts={max_restarts}",
        "-m", "loopline.llm.worker", str(config),
    ]  # fmt: skip
    threads = max(1, (os.cpu_count() or 1) // n)  # torchrun's default is 1 a worker
    environ = {"OMP_NUM_THREADS": str(threads), **os.environ, **(env or {})}
    return subprocess.run(cmd, env=environ, check=False).returncode


def _check_devices(processes: int) -> None:
    """On a machine with GPUs, a rank takes one (its local rank's): no more ranks."""
    import torch

    if torch.cuda.is_available() and processes > torch.cuda.device_count():
        raise ConfigError(
            f"{processes} processes on {torch.cuda.device_count()} GPU(s): one GPU a rank; "
            "use --processes to ask for fewer."
        )
