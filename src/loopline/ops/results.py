"""Saved benchmark results: what a benchmark measured, with when, where and how.

A benchmark run with ``--save`` writes ``benchmarks/results/<name>.json``::

    {"benchmark": "serving", "date": "2026-12-07T17:00:00+00:00",
     "machine": {"cpu": "...", "cores": 2, "affinity": 1, "memory_gib": 7.8,
                 "python": "3.12.3", "platform": "Linux-..."},
     "command": "loopline bench serving --seconds 10 --json --save",
     "result": {...the record the benchmark prints with --json...}}

The planner (:mod:`loopline.ops.plan`) reads these files; a figure it uses is always one a
benchmark measured on a named machine on a named date, never one typed in by hand.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopline.exceptions import ConfigError

#: ``benchmarks/results`` of the source checkout (the folder is committed with the code).
RESULTS = Path(__file__).resolve().parents[3] / "benchmarks" / "results"


def machine() -> dict[str, Any]:
    """The machine a benchmark runs on: CPU model, usable cores, memory, Python, OS."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:  # a benchmark may have pinned itself to fewer: "affinity" says how many
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count() or 1
    memory_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count() or affinity,
        "affinity": affinity,
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def invoked_as(name: str, argv: list[str] | None = None) -> str:
    """The command line that ran benchmark ``name``: ``loopline bench NAME ARGS``."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["loopline", "bench", name, *args])


@dataclass(frozen=True, kw_only=True)
class Saved:
    """One saved benchmark result (see the module)."""

    benchmark: str
    date: str
    machine: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def figure(self, *keys: str) -> float:
        """The measured number at ``result[keys[0]][keys[1]]...``.

        Raises:
            ConfigError: the result has no such number (the message names the command
                that measures it).
        """
        value: Any = self.result
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"The saved result of {self.benchmark!r} ({self.path}) has no figure "
                f"{'.'.join(keys)!r}. Run `loopline bench {self.benchmark} --json --save` "
                "to measure it again."
            )
        return float(value)

    def source(self) -> dict[str, Any]:
        """Where a planned figure came from: benchmark, date, machine, command, file."""
        return {
            "benchmark": self.benchmark,
            "date": self.date,
            "machine": self.machine,
            "command": self.command,
            "file": str(self.path) if self.path else "",
        }


def save(
    name: str,
    record: dict[str, Any],
    *,
    folder: Path | None = None,
    command: str | None = None,
) -> Path:
    """Write ``record`` (what benchmark ``name`` measured) to ``<folder>/<name>.json``
    with the date (UTC), this machine and the command line; return the path.

    Example::

        save("serving", {"http_max_rps": 5400.0})  # benchmarks/results/serving.json
    """
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"A result's name must be a plain file stem. Got {name!r}.")
    where = RESULTS if folder is None else folder
    where.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "machine": machine(),
        "command": command if command is not None else invoked_as(name),
        "result": record,
    }
    path = where / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def load(name: str, folder: Path | None = None) -> Saved:
    """The saved result of benchmark ``name``.

    Raises:
        ConfigError: no such file (the message names the command that writes it), or the
            file is not a saved result.
    """
    where = RESULTS if folder is None else folder
    path = where / f"{name}.json"
    if not path.is_file():
        raise ConfigError(
            f"No saved result of benchmark {name!r} in {where}. "
            f"Run `loopline bench {name} --json --save` to measure it on this machine."
        )
    try:
        data = json.loads(path.read_text())
        return Saved(
            benchmark=str(data["benchmark"]),
            date=str(data["date"]),
            machine=dict(data.get("machine", {})),
            command=str(data.get("command", "")),
            result=dict(data["result"]),
            path=path,
        )
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"{path} is not a saved benchmark result ({e}). "
            f"Run `loopline bench {name} --json --save` to write it again."
        ) from e
