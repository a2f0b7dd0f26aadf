"""HTTP load on ``loopline serve recs``: the benchmark's saturation rate and tail
latency at half of it, with the serving benchmark's load generator."""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from loopline.serving import KeyRing, new_key


def http_figures(bench: ModuleType, *, seconds: float, users: int = 943) -> dict[str, Any]:
    """Train and register the recommender into a temporary state, serve it pinned to
    core 0, and load it from this process (core 1): every request a new request id,
    known users in turn."""
    loopline = str(Path(sys.executable).parent / "loopline")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry = f"sqlite:///{root / 'registry.db'}"
        state = root / "state"
        subprocess.run(
            [loopline, "train", "recs", "--state", str(state), "--registry", registry],
            check=True, capture_output=True,
        )  # fmt: skip
        key, stored = new_key("bench", ["score"])
        KeyRing([stored]).save(root / "keys.json")
        ids = itertools.count()

        def make() -> bytes:
            i = next(ids)
            return json.dumps(
                {"request_id": f"b-{i}", "user": str(1 + i % users), "k": 10}
            ).encode()

        port = bench.free_port()
        proc = bench.start(
            [loopline, "serve", "recs", "--port", str(port), "--state", str(state),
             "--registry", registry, "--keys", str(root / "keys.json")],
            port,
        )  # fmt: skip
        try:
            path = "/v1/recommend"
            asyncio.run(bench.closed_loop(port, key, 2, path=path, make=make))
            runs = [
                asyncio.run(bench.closed_loop(port, key, seconds, path=path, make=make))
                for _ in range(3)
            ]
            rps = statistics.median(r["rps"] for r in runs)
            half = asyncio.run(bench.open_loop(port, key, rps / 2, seconds, path=path, make=make))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "http_max_rps": round(rps),
        "http_errors": sum(r["errors"] for r in runs),
        "http_p50_ms_at_half_load": round(half["p50_ms"], 2),
        "http_p99_ms_at_half_load": round(half["p99_ms"], 2),
        "http_errors_at_half_load": half["errors"],
    }
