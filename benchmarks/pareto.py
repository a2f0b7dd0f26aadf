"""Pareto fronts, measured: each application's latency / quality / cost levers swept.

    loopline bench pareto APP [--json] [--html PATH] [--prices FILE] [--seed N] [--save]

``APP`` is ``fraud``, ``recs``, ``vision`` or ``llm``. For ``fraud`` and ``recs`` every
point is one setting of one lever, trained (where the lever needs it) and measured here:
the latency of one call timed one at a time (p50, p99; ONNX Runtime with one thread, as
served), the application's headline quality on its held-out set, and the CPU cost of a
million predictions at the price table's core-hour (``loopline.ops.prices``;
``--prices`` overrides it).

* ``fraud`` (``loopline.apps.fraud.levers``): trees x leaves, the teacher's top-k
  features, batch size, and distilled students against the same small model trained on
  the labels; quality: average precision on the test days (recall at precision 0.9, the
  threshold chosen on validation, beside it). The ``full`` simulator profile at 2,000
  customers x 90 days.
* ``recs`` (``loopline.apps.recs.levers``): exact against HNSW search, candidates per
  retriever, ranker rounds (none: retrieval order), ALS factors; quality: NDCG@10 on
  MovieLens-100K (per-user random 80/20, full ranking).

``vision`` and ``llm`` measure nothing: their fronts are read from the saved results of
their own benchmarks (``benchmarks/results/vision.json``, ``llm-serve.json``), and the
output names that result's date, machine and command (``source``). Cost there is the
saved figures turned into CPU-seconds, at the price table's core-hour.

* ``vision`` (``loopline.apps.vision.levers``), from ``loopline bench vision``: the
  detector in FP32 against INT8; latency: one detector call on one frame, one core
  (median; no p99 of the call alone was kept); quality: mAP@0.5 on held-out generated
  frames; cost: the one-core time a frame.
* ``llm`` (``loopline.llm.levers``), from ``loopline bench llm-serve``: float32, bfloat16
  and int8 weights decoding 1 and 16 sequences (latency: each sequence's time per output
  token, 1000 x n / tokens per second), and continuous against static batching on the
  benchmark's trace (its measured time per output token, p50 and p99); quality:
  perplexity (lower is better); cost: the machine's cores (the saved affinity) / tokens
  per second.

With ``--json``, one object: ``app``, ``points`` (each with its settings and figures),
``front`` (the names of the non-dominated points), ``lever_fronts`` (the front of each
lever's points alone), ``distillation`` (fraud), ``source`` (vision, llm), ``data``,
``prices``, ``report``. ``--html`` (default ``.loopline/pareto/APP.html``): the report,
the front drawn. ``--save``: also ``benchmarks/results/pareto-APP.json``. Run it alone on
the machine: the latencies are of one core shared with nothing else.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from rich.console import Console

APPS = ("fraud", "recs", "vision", "llm")
SAVED = ("vision", "llm")  # read from saved results, not measured here
QUALITY = {"fraud": "average precision (test)", "recs": "NDCG@10 (test)"}
LATENCY = {
    "fraud": "Latency: one ONNX Runtime call of the model (one thread) on one request's row "
    "(or a batch's rows), timed one call at a time; the feature lookup, the network and the "
    "server's own work are not in it.",
    "recs": "Latency: one user's request in process (candidates from the three retrievers, "
    "the ranker's features, the ONNX ranker with one thread, the top 10), timed one at a "
    "time; the feature store read, re-ranking, the network and the server are not in it.",
    "vision": "Latency: one ONNX Runtime call of the detector (one thread, pinned to one core) "
    "on one frame, median of rounds with FP32 and INT8 interleaved; no p99 of the call alone "
    "was kept (the p99 column repeats the median). Preprocessing, tracking and publishing are "
    "not in it: the INT8 point's figures give the whole pipeline's frame time.",
    "llm": "Latency: time per output token of one sequence. Dtype points: 1000 x n / "
    "tokens per second decoding n sequences together (prefill left out; no p99 kept, the "
    "column repeats the median). Batching points: the trace's measured time per output "
    "token (p50, p99), whose throughput is bounded by the arrival rate.",
}


def run(app: str, seed: int, prices: Any, say: Any) -> dict[str, Any]:
    if app == "fraud":
        from loopline.apps.fraud import levers as fraud

        return fraud.sweep(fraud.SweepOptions(seed=seed), prices, say)
    if app == "vision":
        from loopline.apps.vision import levers as vision

        return vision.sweep(prices, say) | {"quality": vision.QUALITY}
    if app == "llm":
        from loopline.llm import levers as llm

        return llm.sweep(prices, say) | {"quality": llm.QUALITY}
    from loopline.apps.recs import levers as recs

    return recs.sweep(recs.SweepOptions(seed=seed), prices, say)


def provenance(record: dict[str, Any]) -> str:
    """Where the figures came from: measured by this run, or read from a saved result."""
    source = record.get("source")
    machine = (source or record)["machine"]
    where = (
        f"{machine.get('cpu')} ({machine.get('cores')} cores, affinity {machine.get('affinity')})"
    )
    if source:
        return (
            f"Not measured by this command: read from the saved result of "
            f"`{source['command']}` ({source['date']}, on {where}; {source['file']})."
        )
    return f"Measured {record['date']} on {machine.get('arch')}, {where}, one point at a time."


def distillation_section(summary: dict[str, Any]) -> tuple[str, str]:
    from loopline.reports import table

    rows = []
    for size, row in summary.items():
        if size == "teacher":
            rows.append(["teacher (400 x 31)", "labels", *row.values()])
            continue
        for how in ("labels_only", "distilled", "distilled_unlabelled"):
            if how in row:
                rows.append([f"student {size}", how.replace("_", " "), *row[how].values()])
    header = ["model", "trained on", "AP", "recall @ P0.9", "p50 ms", "USD / 1M"]
    return "Distillation: the same small model, on labels or on the teacher's scores", table(
        rows, header
    )


def report(record: dict[str, Any], path: Path, prices: Any) -> Path:
    """The HTML report of a record this benchmark printed (or saved)."""
    from loopline.ops import Point, write_front_report

    app = record["app"]
    points = [Point(**p) for p in record["points"]]
    summary = record.get("distillation")
    notes = [
        provenance(record)
        + " Data: "
        + ", ".join(f"{k} {v}" for k, v in record["data"].items())
        + ".",
        LATENCY[app],
        "Cost: CPU time per prediction x the core-hour price; memory and idle capacity "
        "not counted. Front: no other point is at least as good on p50 latency, quality "
        "and cost and better on one (on the raw figures: differences within the noise "
        "count).",
    ]
    return write_front_report(
        path,
        points,
        title=f"loopline: {app} latency / quality / cost",
        quality_name=record["quality"],
        prices=prices,
        notes=notes,
        sections=[distillation_section(summary)] if summary else [],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", choices=APPS, help="the application whose levers to sweep")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--html", type=Path, default=None, help="where to write the report")
    parser.add_argument("--seed", type=int, default=0, help="data and model seed")
    parser.add_argument("--prices", type=Path, default=None, help="a TOML price override")
    parser.add_argument(
        "--save", action="store_true", help="also write benchmarks/results/pareto-APP.json"
    )
    args = parser.parse_args()
    console = Console(stderr=True)
    started = time.perf_counter()

    def say(what: str) -> None:
        console.log(f"[{time.perf_counter() - started:5.0f} s] {what}")

    from loopline.exceptions import ConfigError
    from loopline.ops import (
        invoked_as,
        load_prices,
        machine,
        pareto_front,
        points_table,
        save_result,
    )

    try:
        prices = load_prices(args.prices)
    except ConfigError as e:
        parser.error(str(e))
    got = run(args.app, args.seed, prices, say)
    points = got.pop("points")
    if "source" in got:
        got["source"]["file"] = shown(got["source"]["file"])
    html = args.html or Path(".loopline/pareto") / f"{args.app}.html"
    levers = dict.fromkeys(p.lever for p in points)
    record = {
        "app": args.app,
        "quality": got.pop("quality", None) or QUALITY[args.app],
        "points": [p.to_dict() for p in points],
        "front": pareto_front(points),
        "lever_fronts": {k: pareto_front([p for p in points if p.lever == k]) for k in levers},
        **got,
        "prices": {"core_hour": prices.core_hour, "date": prices.date, "source": prices.source},
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": machine() | {"arch": platform.machine()},
        "report": str(html),
        "seconds": round(time.perf_counter() - started, 1),
    }
    report(record, html, prices)
    if args.save:
        say(f"saved {save_result(f'pareto-{args.app}', record, command=invoked_as('pareto'))}")
    say(f"report: {html}")
    if args.json:
        print(json.dumps(record))
        return
    if args.app in SAVED:
        Console().print(provenance(record), highlight=False)
    Console().print(points_table(points), highlight=False)


def shown(file: str) -> str:
    """``file`` relative to the working directory where it lies under it."""
    try:
        return str(Path(file).resolve().relative_to(Path.cwd()))
    except ValueError:
        return file


if __name__ == "__main__":
    main()
