"""Soak benchmark: the fraud decision service under sustained load for minutes.

    loopline bench soak [--seconds 600] [--rate 500] [--report soak.html] [--json]

The server (`loopline serve fraud`, embedded defaults) runs pinned to core 0 and this load
generator to core 1. Simulated transactions (the ``full`` profile, 500 customers) are
POSTed open loop at ``--rate`` per second (`loopline.apps.fraud.soak`). Bars from issue 7:
resident memory after warm-up grows by at most 5 %, and the error rate is 0.

There is no baseline server here: the bars are absolute, and the hand-written FastAPI
baseline of `bench serving` (about 220 requests/s) could not carry the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from loopline.testing import SoakResult, check, soak

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import champion, free_port, start  # shared with the serving benchmark

TX_PER_CUSTOMER_DAY = 2.0  # the full profile's genuine traffic, about


def report(result: SoakResult, path: Path) -> None:
    """Memory and latency over the soak, as an HTML page."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from loopline.training import svg

    fig, (mem, lat) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    t, mb = zip(*result.rss_mb, strict=True)
    mem.plot(t, mb)
    mem.axvspan(0, result.warmup_s, alpha=0.15, label="warm-up")
    mem.axhline(result.warm_mb * 1.05, ls="--", c="r", label="+5 % over warm")
    mem.set_ylabel("resident memory (MiB)")
    mem.legend(loc="lower right")
    per_s: dict[int, list[float]] = {}
    step = result.seconds / max(len(result.latencies_ms), 1)
    for i, ms in enumerate(result.latencies_ms):  # in completion order: about in time
        per_s.setdefault(int(i * step), []).append(ms)
    secs = sorted(per_s)
    p99 = [sorted(per_s[s])[int(0.99 * (len(per_s[s]) - 1))] for s in secs]
    lat.plot(secs, p99, lw=0.8)
    lat.set_ylabel("p99 latency per second (ms)")
    lat.set_xlabel("seconds")
    rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in result.summary().items())
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>loopline soak</title>"
        "<h1>loopline soak: the fraud service under sustained load</h1>"
        f"<table>{rows}</table>{svg(fig)}"
    )
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--rate", type=float, default=500, help="requests per second")
    parser.add_argument("--warmup", type=float, default=60, help="seconds before memory counts")
    parser.add_argument(
        "--customers", type=int, default=500, help="simulated population (entities in state)"
    )
    parser.add_argument("--report", type=Path, default=Path("soak-report.html"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    check(args.seconds, args.warmup, 15.0)
    from loopline.apps.fraud.data import request_bodies
    from loopline.apps.fraud.simulator import profile, simulate

    customers = args.customers
    days = math.ceil(args.seconds * args.rate / (customers * TX_PER_CUSTOMER_DAY) * 1.2) + 1
    setting = profile("full", customers=customers, terminals=2 * customers, days=days)
    sim = simulate(setting, seed=11)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry, key = champion(root, "soak")
        os.sched_setaffinity(0, {1})  # the load generator: core 1
        port = free_port()
        loopline = str(Path(sys.executable).parent / "loopline")
        proc = start(
            [loopline, "serve", "fraud", "--port", str(port), "--state", str(root / "state"),
             "--registry", registry.uri, "--keys", str(root / "keys.json")],
            port,
        )  # fmt: skip
        try:
            result = asyncio.run(
                soak(
                    port,
                    key,
                    proc.pid,
                    request_bodies(sim.transactions),
                    path="/v1/score",
                    seconds=args.seconds,
                    rate=args.rate,
                    warmup_s=args.warmup,
                    progress=not args.json,
                )
            )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    report(result, args.report)
    out: dict[str, Any] = {"benchmark": "soak", **result.summary(), "report": str(args.report)}
    if args.json:
        print(json.dumps(out))
        return
    table = Table(title=f"fraud service soak ({args.seconds:g} s at {args.rate:g}/s)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    targets = {"error_rate": "0", "rss_growth": "<= 0.05"}
    for k, v in out.items():
        if k != "benchmark":
            table.add_row(k, f"{v:,}" if isinstance(v, int) else str(v), targets.get(k, ""))
    Console().print(table)


if __name__ == "__main__":
    main()
