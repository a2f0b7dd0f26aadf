"""Pareto fronts, measured: each application's latency / quality / cost levers swept.

    loopline bench pareto APP [--json] [--html PATH] [--prices FILE] [--seed N] [--save]

``APP`` is ``fraud`` or ``recs``. Every point is one setting of one lever, trained (where
the lever needs it) and measured here: the latency of one call timed one at a time (p50,
p99; ONNX Runtime with one thread, as served), the application's headline quality on its
held-out set, and the CPU cost of a million predictions at the price table's core-hour
(``loopline.ops.prices``; ``--prices`` overrides it).

* ``fraud`` (``loopline.apps.fraud.levers``): trees x leaves, the teacher's top-k
  features, batch size, and distilled students against the same small model trained on
  the labels; quality: average precision on the test days (recall at precision 0.9, the
  threshold chosen on validation, beside it). The ``full`` simulator profile at 2,000
  customers x 90 days.
* ``recs`` (``loopline.apps.recs.levers``): exact against HNSW search, candidates per
  retriever, ranker rounds (none: retrieval order), ALS factors; quality: NDCG@10 on
  MovieLens-100K (per-user random 80/20, full ranking).

With ``--json``, one object: ``app``, ``points`` (each with its settings and figures),
``front`` (the names of the non-dominated points), ``distillation`` (fraud), ``data``,
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

APPS = ("fraud", "recs")
QUALITY = {"fraud": "average precision (test)", "recs": "NDCG@10 (test)"}
LATENCY = {
    "fraud": "Latency: one ONNX Runtime call of the model (one thread) on one request's row "
    "(or a batch's rows), timed one call at a time; the feature lookup, the network and the "
    "server's own work are not in it.",
    "recs": "Latency: one user's request in process (candidates from the three retrievers, "
    "the ranker's features, the ONNX ranker with one thread, the top 10), timed one at a "
    "time; the feature store read, re-ranking, the network and the server are not in it.",
}


def run(app: str, seed: int, prices: Any, say: Any) -> dict[str, Any]:
    if app == "fraud":
        from loopline.apps.fraud import levers as fraud

        return fraud.sweep(fraud.SweepOptions(seed=seed), prices, say)
    from loopline.apps.recs import levers as recs

    return recs.sweep(recs.SweepOptions(seed=seed), prices, say)


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
    machine = record["machine"]
    notes = [
        f"Measured {record['date']} on {machine['arch']}, {machine['cpu']} "
        f"({machine['cores']} cores), one point at a time. Data: "
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
    html = args.html or Path(".loopline/pareto") / f"{args.app}.html"
    record = {
        "app": args.app,
        "quality": QUALITY[args.app],
        "points": [p.to_dict() for p in points],
        "front": pareto_front(points),
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
    Console().print(points_table(points), highlight=False)


if __name__ == "__main__":
    main()
