"""The streaming scorer under `loopline bench serving` (run in a process pinned to one
core by the parent):

    python benchmarks/serving_stream.py --registry URI --state DIR --log PATH max --n N
    python benchmarks/serving_stream.py --registry URI --state DIR --log PATH follow --seconds S

``max``: the log already holds N transactions; time the scorer draining them (features,
model, rules, decisions durable) and print transactions/s. ``follow``: say ``ready`` once
built, then score whatever a producer appends for S seconds; print the p50/p99 from each
record's append time to its decision being durable.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from loopline.apps.fraud.service import ServeOptions, build, stream_scorer
from loopline.events import EmbeddedLog
from loopline.serving.collector import freeze_survivors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--registry", required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--keys", type=Path, required=True)
    parser.add_argument("phase", choices=["max", "follow"])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    service = build(ServeOptions(state=args.state, registry=args.registry, keys=args.keys))
    log = EmbeddedLog(args.log)
    stream = stream_scorer(service, log, max_records=2000)
    if args.phase == "max":
        started = time.perf_counter()
        while stream.stats.events < args.n and stream.run_once():
            pass
        took = time.perf_counter() - started
        print(
            json.dumps(
                {
                    "events": stream.stats.events,
                    "seconds": took,
                    "tx_per_s": stream.stats.events / took,
                }
            )
        )
    else:
        freeze_survivors()  # the build's objects: the first full collection is no event's
        print("ready", flush=True)  # the producer starts now: a cold start is not following
        deadline = time.monotonic() + args.seconds
        stream.run(until=lambda: time.monotonic() > deadline, idle_sleep_s=0.005)
        lat = np.array(stream.stats.latencies_ms)
        print(
            json.dumps(
                {
                    "events": len(lat),
                    "p50_ms": float(np.percentile(lat, 50)),
                    "p99_ms": float(np.percentile(lat, 99)),
                }
            )
        )
    log.close()


if __name__ == "__main__":
    main()
