"""``loopline demo fraud --profile scale``: the fraud system on real servers, with several
processes per stage (start them with ``loopline up --profile scale``).

1. simulate a world; compute its features offline; train the champion and register it
   on the MLflow tracking server;
2. publish the history to Kafka (``settings.partitions`` partitions, keyed by card);
   start ``settings.workers`` feature workers (``loopline work fraud``), each the only
   writer of its partitions' state in Redis, and wait until they have caught up;
3. start ``settings.scorers`` scoring processes (``loopline serve fraud``), stateless:
   they read every partition's features from Redis and write decisions to PostgreSQL;
4. replay the stream's days through them over HTTP, hour by hour, spread across the
   scorers as a load balancer would; each hour's transactions and labels then go to
   Kafka, as a payment switch's event stream would carry them, and the workers fold
   them in. After the first day a retrained version is promoted on the registry; the
   scorers load it and swap without a pause (blue-green);
5. check: every answered transaction has exactly one decision in PostgreSQL; the
   online features in Redis equal the offline engine's over the same events.

The replay runs simulated time faster than real time: an hour of transactions is
scored in about a second, so each hour's events reach the workers after the hour's
decisions, as a fixed ingestion lag of up to one simulated hour.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa

from loopline.apps.fraud import data
from loopline.apps.fraud.data import request_bodies
from loopline.apps.fraud.erasure import open_events
from loopline.apps.fraud.labels import LABELS
from loopline.apps.fraud.publish import TOPICS, to_message
from loopline.apps.fraud.retrain import History, train_at
from loopline.apps.fraud.simulator import START_MS, Simulation, profile, simulate
from loopline.apps.fraud.workers import TRANSACTIONS, create_topics, engine_of, lag
from loopline.demos.fraud.scale_checks import (
    dead_lettered,
    decisions_check,
    online_offline_mismatches,
)
from loopline.demos.fraud.scenario import MODEL, STREAM_DAY, progress_bar
from loopline.events import Codec, EventLog
from loopline.exceptions import ConfigError, TopicNotFoundError
from loopline.registry import ModelVersion, Registry
from loopline.servers import free_port, masked
from loopline.serving import KeyRing, new_key
from loopline.settings import Settings, load_settings
from loopline.testing import HttpReplay
from loopline.units import DAY_MS, HOUR_MS

CONNECTIONS_PER_SCORER = 2


def run(
    settings_file: Path,
    *,
    customers: int = 1000,
    stream_hours: int = 48,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every stage on the servers of ``settings_file``; return the summary."""
    settings = load_settings(settings_file)
    if not settings.scale_out:
        raise ConfigError(
            f"{settings_file} does not name a server for every part (events, features, "
            "decisions, registry): start them with `loopline up --profile scale`."
        )
    assert settings.events is not None
    assert settings.decisions is not None
    log = open_events(settings.events, keys=settings.subject_keys or settings.decisions)
    if _exists(log, TRANSACTIONS):
        log.close()
        raise ConfigError(
            "The cluster already holds a demo run (topic 'transactions' exists): start a "
            "fresh one with `loopline down && loopline up --profile scale`."
        )
    days = STREAM_DAY + -(-stream_hours // 24)
    sim = simulate(replace(profile("full", customers=customers), days=days), seed=0)
    processes: list[_Child] = []
    env = {
        **os.environ,
        "LOOPLINE_SETTINGS": str(settings_file.resolve()),
        "LOOPLINE_TOKEN_KEY": secrets.token_hex(32),  # one card-token key for every scorer
    }
    # the cluster's signing key (made by `loopline up`): scorers run in state folders of
    # their own, so they are told where the key they trust is
    keys = settings.state / "keys"
    env.setdefault("LOOPLINE_TRUSTED_KEYS", str((keys / "signing.pub").resolve()))
    env.setdefault("LOOPLINE_SIGNING_KEY", str((keys / "signing.key").resolve()))
    try:
        with progress_bar(progress) as bar:
            stages = _Stages(settings, log, sim, bar, processes, env)
            first = stages.train_champion()
            stages.publish_history()
            stages.start_workers()
            stages.start_scorers()
            promoted = stages.replay(stream_hours)
            stages.catch_up()
            check = decisions_check(settings.decisions, sim, stages.http.answered)
            dropped = dead_lettered(log)
            check["dead_lettered"] = len(dropped)
            check["online_offline_mismatches"] = online_offline_mismatches(
                sim, stages.positions, stages.engine, stages.label_end, dropped
            )
    finally:
        _stop(processes)
        log.close()
    versions = Counter(check.pop("versions"))
    ordered = sorted(stages.http.latencies)
    return {
        "average_precision": check.pop("average_precision"),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[int(0.99 * (len(ordered) - 1))],
        "throughput_tps": len(ordered) / stages.http.wall_s,
        "http_requests": len(ordered),
        "http_shed_and_retried": stages.http.retried,
        "scorers": settings.scorers,
        "feature_workers": settings.workers,
        "partitions": settings.partitions,
        "model_versions": dict(versions),
        "promoted": f"{MODEL}:{promoted.version}" in versions,
        "champion_at_start": first.version,
        **check,
        "servers": {
            k: masked(getattr(settings, k)) for k in ("events", "features", "decisions", "registry")
        },
    }


class _Stages:
    """The demo's stages, sharing the simulation, the servers and the processes."""

    def __init__(
        self,
        settings: Settings,
        log: EventLog,
        sim: Simulation,
        bar: Any,
        processes: list[_Child],
        env: dict[str, str],
    ) -> None:
        self.settings, self.log, self.sim, self.bar = settings, log, sim, bar
        self.processes, self.env = processes, env
        self.start_ms = START_MS + STREAM_DAY * DAY_MS
        self.tx_times = sim.transactions["event_time_ms"].to_numpy()
        self.label_times = sim.labels["label_time_ms"].to_numpy()
        self.tx_end = int(np.searchsorted(self.tx_times, self.start_ms))  # published so far
        self.label_end = int(np.searchsorted(self.label_times, self.start_ms))
        self.positions = np.empty((0, 2), dtype=np.int64)
        self.engine = engine_of(settings)
        self.http = _replay([], "")

    def train_champion(self) -> ModelVersion:
        task = self.bar.add_task("simulated; features offline, train the champion", total=None)
        self.history = History.of(data.histories(self.sim.transactions, self.sim.labels))
        self.registry = Registry(self.settings.registry, root=self.settings.state / "registry")
        first = train_at(self.history, self.start_ms, registry=self.registry)
        self.bar.remove_task(task)
        return first

    def publish_history(self) -> None:
        create_topics(self.log, self.settings)
        task = self.bar.add_task("Kafka: publish the history", total=self.tx_end + self.label_end)
        tx = self.sim.transactions.slice(0, self.tx_end)
        self.positions = _publish(self.log, TRANSACTIONS, tx, self.bar, task)
        _publish(self.log, LABELS, self.sim.labels.slice(0, self.label_end), self.bar, task)

    def start_workers(self) -> None:
        for i in range(self.settings.workers):
            args = ["work", "fraud", "--index", str(i)]
            self.processes.append(_spawn(args, self.env, self.settings.state, f"worker-{i}"))
        self.catch_up()

    def catch_up(self) -> None:
        everything = list(range(self.settings.partitions))
        _wait_for(self.bar, "feature workers: catch up",
                  lambda: lag(self.engine, self.log, everything), self.processes)  # fmt: skip

    def start_scorers(self) -> None:
        key, stored = new_key("scale-demo", ["score"])
        keys = self.settings.state / "keys.json"
        KeyRing([stored]).save(keys)
        ports = [free_port() for _ in range(self.settings.scorers)]
        for i, port in enumerate(ports):
            env = {**self.env, "LOOPLINE_STATE": str(self.settings.state / f"scorer-{i}")}
            args = ["serve", "fraud", "--port", str(port), "--keys", str(keys)]
            self.processes.append(_spawn(args, env, self.settings.state, f"scorer-{i}"))
        _wait_ready(ports, self.processes)
        self.http = _replay(ports, key)

    def replay(self, hours: int) -> ModelVersion:
        """The stream, hour by hour: over HTTP, then to Kafka; half way, a retrained
        version is promoted (the scorers swap to it, blue-green)."""
        end_ms = self.start_ms + hours * HOUR_MS
        total = int(np.searchsorted(self.tx_times, end_ms)) - self.tx_end
        task = self.bar.add_task("HTTP: replay the stream across the scorers", total=total)
        self.http.advance = lambda n: self.bar.advance(task, n)
        promoted = None
        for h in range(hours):
            end = self.start_ms + (h + 1) * HOUR_MS
            hi_tx = int(np.searchsorted(self.tx_times, end))
            hi_label = int(np.searchsorted(self.label_times, end))
            hour = self.sim.transactions.slice(self.tx_end, hi_tx - self.tx_end)
            asyncio.run(self.http.post(request_bodies(hour)))
            self.positions = np.concatenate(
                [self.positions, _publish(self.log, TRANSACTIONS, hour)]
            )
            labels = self.sim.labels.slice(self.label_end, hi_label - self.label_end)
            _publish(self.log, LABELS, labels)
            self.tx_end, self.label_end = hi_tx, hi_label
            if h == hours // 2 - 1:
                retrained = train_at(self.history, end, registry=self.registry)
                why = "retrained on the newest matured day"
                promoted = self.registry.promote(
                    MODEL, retrained.version, trigger="scale demo", why=why
                )
                _wait_swapped(self.http.ports, f"{MODEL}:{promoted.version}", self.processes)
        assert promoted is not None, "at least 2 hours"
        return promoted


def _replay(ports: list[int], key: str) -> HttpReplay:
    return HttpReplay(
        ports, key, path="/v1/score", id_field="transaction_id",
        connections=CONNECTIONS_PER_SCORER,
    )  # fmt: skip


def _exists(log: EventLog, topic: str) -> bool:
    try:
        log.partitions(topic)
    except TopicNotFoundError:
        return False
    return True


def _stop(processes: list[_Child]) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


class _Child(subprocess.Popen[bytes]):
    """A worker or scorer process, with the file its output goes to."""

    log: Path


def _spawn(args: list[str], env: dict[str, str], state: Path, name: str) -> _Child:
    state.mkdir(parents=True, exist_ok=True)
    with (state / f"{name}.log").open("ab") as out:
        child = _Child([sys.executable, "-m", "loopline", *args], env=env,
                       stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    child.log = state / f"{name}.log"
    return child


def _alive(processes: list[_Child]) -> None:
    for p in processes:
        if p.poll() is not None:
            tail = p.log.read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError(
                f"{p.args!r} exited with code {p.returncode}; the end of {p.log}:\n"
                + "\n".join(tail)
            )


def _wait_for(bar: Any, what: str, remaining: Any, processes: list[_Child]) -> None:
    total = left = remaining()
    task = bar.add_task(what, total=total)
    while left:
        _alive(processes)
        time.sleep(0.2)
        left = remaining()
        bar.update(task, completed=total - left)
    bar.update(task, completed=total)


def _wait_swapped(ports: list[int], label: str, processes: list[_Child]) -> None:
    """Until every scorer serves ``label`` as its champion (each watches the registry's
    alias, loads and warms the new version, then swaps)."""
    deadline = time.monotonic() + 120
    for port in ports:
        while not _champion_is(port, label):
            _alive(processes)
            if time.monotonic() > deadline:
                raise RuntimeError(f"The scorer on port {port} did not swap to {label} in 120 s.")
            time.sleep(0.2)


def _champion_is(port: int, label: str) -> bool:
    """Whether the scorer's ``loopline_model_loaded`` gauge shows ``label`` as champion."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return any(
        s.labels == {"role": "champion", "model": label} and s.value == 1
        for family in text_string_to_metric_families(text)
        if family.name == "loopline_model_loaded"
        for s in family.samples
    )


def _wait_ready(ports: list[int], processes: list[_Child]) -> None:
    deadline = time.monotonic() + 120
    for port in ports:
        while True:
            _alive(processes)
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"The scorer on port {port} was not ready within 120 s.")
            time.sleep(0.2)


def _publish(
    log: EventLog, topic: str, table: pa.Table, bar: Any = None, task: Any = None
) -> np.ndarray:
    """Append ``table``'s rows in order; return each one's (partition, offset)."""
    codec: Codec[Any] = Codec(TOPICS[topic])
    keep = [c for c in table.column_names if c in codec.schema.__struct_fields__]
    out: list[tuple[int, int]] = []
    for lo in range(0, table.num_rows, 5000):
        rows = table.slice(lo, 5000).select(keep).to_pylist()
        out += log.append_many(topic, [to_message(codec, topic, r) for r in rows])
        if bar is not None:
            bar.advance(task, len(rows))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def ok(summary: dict[str, Any]) -> bool:
    """Whether every check passed."""
    return bool(
        summary["exactly_one_decision_each"]
        and summary["online_offline_mismatches"] == 0
        and summary["promoted"]
    )


def show(summary: dict[str, Any]) -> str:
    """The summary as a table (printed here; returns what is left to print)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="loopline demo fraud --profile scale (simulated data)")
    table.add_column("figure")
    table.add_column("value")
    for key, value in summary.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console(width=160).print(table)
    return "all checks passed" if ok(summary) else "a check failed"
