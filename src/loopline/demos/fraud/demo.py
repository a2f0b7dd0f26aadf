"""``loopline demo fraud``: the main job end to end on embedded defaults.

One simulated world (the drift scenario's: the ``full`` profile, with a card-enumeration
wave starting mid-stream) goes through every stage:
1. simulate; compute its features offline; train and register the champion on the
   matured days (:class:`loopline.demos.fraud.scenario.StreamedWorld`);
2. build the online state, then stream the days hour by hour through the event log and
   the streaming scorer, labels arriving on their own topic; the drift monitor and the
   retraining loop notice the wave, train a challenger, shadow, gate, canary, promote;
3. start the HTTP service (uvicorn) and replay the last day through it;
4. sum up: quality on the ground truth, latency, throughput, decisions, alerts, versions,
   and an HTML report.

Every stage must succeed for exit code 0.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from loopline.apps.fraud.data import request_bodies
from loopline.apps.fraud.simulator import START_MS, simulate
from loopline.demos.fraud import scenario_report
from loopline.demos.fraud.scenario import (
    MODEL,
    NEW_SCENARIO,
    STREAM_DAY,
    ScenarioOptions,
    StreamedWorld,
    changed_world,
    progress_bar,
)
from loopline.demos.fraud.scenario_report import alert_row, steps_of
from loopline.serving import KeyRing, new_key, running
from loopline.tasks import average_precision
from loopline.testing import HttpReplay
from loopline.units import DAY_MS

HTTP_CONNECTIONS = 4


def run(
    *,
    customers: int = 1500,
    days_after_change: int = 20,
    workdir: Path | None = None,
    report: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every stage; return the summary (see the module docstring)."""
    options = ScenarioOptions(customers=customers, progress=progress)
    change_day = STREAM_DAY + options.change_after_days
    setting = changed_world(options, days_after_change)
    key, stored = new_key("demo", ["score"])
    with tempfile.TemporaryDirectory(prefix="loopline-demo-") as tmp:
        root = workdir or Path(tmp)
        with progress_bar(progress) as bar:
            world = StreamedWorld(
                simulate(setting, seed=options.seed), root, options, bar, KeyRing([stored])
            )
            world.stream(setting.days - 1)
            last_day = world.sim.transactions.filter(
                pa.array(world.sim.transactions["event_time_ms"].to_numpy() >= world.now_ms)
            )
            task = bar.add_task("HTTP: replaying the last day", total=last_day.num_rows)
            world.now_ms += DAY_MS  # the service's clock: the end of that day
            latencies, retried = asyncio.run(
                _replay(world, last_day, key, lambda n: bar.advance(task, n))
            )
        decided = world.decisions()
        summary = _summary(world, decided, latencies, change_day)
        summary["http_shed_and_retried"] = retried
        world.close()
    if report is not None:
        series = scenario_report.daily(decided, NEW_SCENARIO, START_MS)
        path = scenario_report.write(
            report,
            summary,
            series,
            title="loopline demo fraud (simulated data)",
            more="The last day was replayed through the HTTP service.",
        )
        summary["report"] = str(path)
    return summary


async def _replay(
    world: StreamedWorld, table: pa.Table, key: str, advance: Callable[[int], object]
) -> tuple[list[float], int]:
    """POST each transaction to the service, served by uvicorn on a thread,
    ``HTTP_CONNECTIONS`` at a time; return each first attempt's latency in ms, and how
    many were shed (503) and asked again; every transaction must end with a 200."""
    with running(world.built.service) as port:
        replay = HttpReplay(
            [port], key, path="/v1/score", id_field="transaction_id",
            connections=HTTP_CONNECTIONS, advance=advance,
        )  # fmt: skip
        await replay.post(request_bodies(table))
    return replay.latencies, replay.retried


def _summary(
    world: StreamedWorld,
    decided: pa.Table,
    latencies: list[float],
    change_day: int,
) -> dict[str, Any]:
    y = decided["is_fraud"].to_numpy().astype(np.int8)
    score = decided["score"].to_numpy()
    flagged = np.asarray(decided["decision"].to_numpy(zero_copy_only=False)) != "approve"
    tp = int((flagged & (y == 1)).sum())
    steps = world.registry.history(MODEL)
    promoted = [s for s in steps if s.action == "promote to champion" and s.version > 1]
    streamed = len(decided) - len(latencies)
    ordered = sorted(latencies)
    return {
        "average_precision": average_precision(y, score),
        "precision_at_operating_point": tp / max(int(flagged.sum()), 1),
        "recall_at_operating_point": tp / max(int(y.sum()), 1),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[int(0.99 * (len(ordered) - 1))],
        "http_requests": len(latencies),
        # the streaming scorer's decisions per second of its own time (hourly batches)
        "throughput_tps": streamed / world.scoring_s,
        "decisions": dict(Counter(decided["decision"].to_pylist())),
        "drift_alerts": sum(kind == "drift" for _, kind, _ in world.loop.alerts),
        "model_versions": sorted(set(decided["model_version"].to_pylist())),
        "promoted": bool(promoted),
        "history": steps_of(steps),
        "alerts": [alert_row(a) for a in world.loop.alerts],
        "settings": {"change_day": change_day, "new_scenario": NEW_SCENARIO},
    }


def show(summary: dict[str, Any]) -> None:
    """The summary as a table, then the recorded steps."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="loopline demo fraud (simulated data)")
    table.add_column("figure")
    table.add_column("value")
    for key, value in summary.items():
        if key in ("history", "alerts", "control_alerts", "settings"):
            continue
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console = Console(width=160)
    console.print(table)
    steps = Table(title="what the retraining loop did (registry history)")
    for col in ("at", "version", "action", "trigger", "passed"):
        steps.add_column(col)
    for s in summary["history"]:
        steps.add_row(s["at"], str(s["version"]), s["action"], s["trigger"], str(s["passed"]))
    console.print(steps)
