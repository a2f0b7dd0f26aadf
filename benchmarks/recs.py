"""Recommendations benchmark: the whole pipeline against its baselines, in one run.

    loopline bench recs [--seconds S] [--skip-http] [--json]

* Offline (MovieLens-100K, RecBole's protocol: per-user random 80/20, full ranking,
  training items excluded): ``ndcg_at_10`` and ``recall_at_20`` of the pipeline
  (retrieval, LambdaRank) against ``ease_*``, ``itemknn_*`` and ``mostpop_*`` fitted on
  the same split; ``temporal_ndcg_at_10`` on each user's last fifth in time (with
  EASE's beside it).
* ``cold_item_recall_at_20``: a tenth of the items withheld from training, found among
  themselves through content embeddings; ``baseline_cold_item_recall_at_20``: genre
  popularity.
* ``coverage`` and ``intra_list_diversity`` of the top 10 with the re-ranker, and
  ``ranked_only_*`` without it.
* ``ann_recall_at_10`` and ``ann_queries_per_s``: the embedded vector index against
  exact search (``benchmarks/vectors.py``, 100,000 x 64 clustered vectors), with
  ``exact_queries_per_s`` beside them.
* ``http_max_rps`` (closed loop, 32 connections) and ``http_p99_ms_at_half_load``
  (open loop at half that rate, latency from each request's scheduled time) of
  ``loopline serve recs`` pinned to one core, the load generator on the other.
* ``swap_failed_requests`` and ``swap_mixed_answers`` (of ``swap_requests``): 4 clients
  sending ``POST /v1/recommend`` to the service (in process, ASGI) through a whole
  embedding swap (new items dual-written, backfill, shadow gate, promote) and a
  rollback; a mixed answer is one whose ``embedding`` items its version's own retrieval
  would not have given, or whose version was not live during the request
  (``loopline.demos.recs.swap``); ``swap_degraded_answers`` beside them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent


def sibling(name: str) -> ModuleType:
    """Another benchmark script of this folder, imported as a module."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def offline(say: Any) -> dict[str, Any]:
    from loopline.apps.recs import offline as evaluate
    from loopline.demos.recs.world import catalogue

    data, items = catalogue()
    out = evaluate.quality(data, items, progress=say)
    say("cold items")
    return {**out, **evaluate.cold_items(data, items.content)}


def ann(say: Any) -> dict[str, Any]:
    say("vector index (100,000 x 64)")
    got = sibling("vectors").run(n=100_000, dim=64, queries=1000, milvus_n=0)
    return {
        "ann_recall_at_10": got["ann_recall_at_10"],
        "ann_queries_per_s": got["ann_queries_per_s"],
        "exact_queries_per_s": got["exact_queries_per_s"],
    }


def online(seconds: float, say: Any) -> dict[str, Any]:
    from loopline.demos.recs.load import http_figures

    say("HTTP (loopline serve recs on one core)")
    return http_figures(sibling("serving"), seconds=seconds)


def swap(say: Any) -> dict[str, Any]:
    """An embedding swap and a rollback through the recommendation service (in-process
    ASGI) under load from 4 clients: failed requests and mixed answers counted
    (``loopline.demos.recs.swap``)."""
    from loopline.demos.recs.swap import swap_under_load

    say("embedding swap and rollback under HTTP load (in-process service)")
    got = swap_under_load(clients=4, per_phase=100)
    return {k: v for k, v in got.items() if k != "swap_backfill_progress"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per HTTP load run")
    parser.add_argument("--skip-http", action="store_true", help="offline figures only")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--save", action="store_true", help="also write benchmarks/results/recs.json"
    )
    args = parser.parse_args()
    console = Console(stderr=True)
    started = time.perf_counter()

    def say(what: str) -> None:
        console.log(f"[{time.perf_counter() - started:5.0f} s] {what}")

    result: dict[str, Any] = {**offline(say), **ann(say)}
    if not args.skip_http:
        result.update(online(args.seconds, say))
    result.update(swap(say))
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.save:
        from loopline.ops import save_result

        saved_to = save_result("recs", result)
        print(f"saved {saved_to}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return
    table = Table("figure", "value", title="loopline bench recs")
    for name, value in result.items():
        table.add_row(name, json.dumps(value))
    Console().print(table)


if __name__ == "__main__":
    main()
