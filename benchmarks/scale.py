"""Scale-out benchmark: N feature workers and N scorers on the scale profile's real servers.

    loopline bench scale [--max-n N] [--seconds S] [--samples FILE] [--json]

Starts the scale profile's servers (noida-db, redis-server, PostgreSQL, MLflow, as
``loopline up --profile scale`` does, in a temporary folder), trains and registers a
champion on simulated data, then for N = 1, 2, 4, ... up to the cores this process may
run on (its affinity; or ``--max-n``) starts N feature workers (``loopline work fraud``)
and N scorers (``loopline serve fraud``) and measures, with this process as the load
generator on the same machine:

* ``tx_per_s``: closed loop, 16 keep-alive connections per scorer, spread over the
  scorers as a load balancer would; every request a new simulated transaction, which
  is also published to Kafka (as the payment switch would) while the workers fold it
  into Redis. Completed 200s per second.
* ``p50_ms`` / ``p99_ms``: open loop at half of that rate (latency from each request's
  scheduled time, so queueing is not hidden).
* ``worker_catch_up_s``: after each phase, how long the workers took to drain what
  was left in Kafka.
* ``cpu_ms_per_tx``: CPU time per decided transaction of each role's processes
  (``/proc``), during the closed loop; ``cpu_cores_busy`` theirs in all, and
  ``machine_cores_busy`` every process's on the machine (it is shared).
* ``scaling_efficiency`` = tx_per_s(N_max) / (N_max * tx_per_s(1)).

It also writes per-core service-time samples (distributions, not averages) to
``--samples`` (default ``.loopline/scale-samples.json``), which ``loopline simulate
capacity`` reads: each scorer's gaps between consecutive answers at saturation (its
service time on a busy core) and its CPU share, one scorer's latency per request when
asked one at a time (5 s, one connection: its own time with its Redis and PostgreSQL
calls, no queue), the workers' per-batch time per event
(an in-process worker draining a backlog), and idle round trips to Redis (GET),
PostgreSQL (one autocommitted INSERT) and Kafka (one acks=all append).

Everything shares this machine's cores: on a small machine the load generator and the
servers take cores the scorers would otherwise have. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from loopline.apps.fraud.data import request_bodies
from loopline.apps.fraud.erasure import open_events
from loopline.apps.fraud.simulator import profile, simulate
from loopline.apps.fraud.workers import TRANSACTIONS, create_topics, workers_of
from loopline.demos.fraud.scale import _publish, _Stages, _stop
from loopline.demos.fraud.scenario import STREAM_DAY
from loopline.servers.profile import down, up
from loopline.settings import load_settings

CONNECTIONS_PER_SCORER = 16
SELF = "load_generator"
T0 = time.perf_counter()


def say(text: str) -> None:
    print(f"[bench scale {time.perf_counter() - T0:6.1f}s] {text}", file=sys.stderr, flush=True)


class _Quiet:
    """The demo stages' progress bar, silenced (this benchmark reports on stderr)."""

    def add_task(self, *a: Any, **k: Any) -> int:
        return 0

    def advance(self, *a: Any, **k: Any) -> None: ...
    def update(self, *a: Any, **k: Any) -> None: ...
    def remove_task(self, *a: Any, **k: Any) -> None: ...


class Conn:
    """One keep-alive HTTP/1.1 connection (one request at a time) to a scorer."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, payload: bytes) -> int:
        head = (
            f"POST /v1/score HTTP/1.1\r\nHost: bench\r\nX-API-Key: {self.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self.writer.write(head.encode() + payload)
        try:
            return await asyncio.wait_for(self._answer(), timeout=10)
        except TimeoutError:
            self.writer.close()
            await self.open()
            return 0

    async def _answer(self) -> int:
        status = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)
        return int(status.split()[1])


class Load:
    """The simulated transactions, in order, each sent once: as request bodies, and
    published to Kafka (in order) once answered, by a thread beside the event loop."""

    def __init__(self, stages: _Stages, start: int) -> None:
        self.stages, self.table = stages, stages.sim.transactions
        self.bodies = [json.dumps(b).encode() for b in request_bodies(self.table)]
        self.next = self.published = start
        self.answered = 0
        self._stop = threading.Event()

    def take(self) -> tuple[int, bytes] | None:
        if self.next >= len(self.bodies):
            return None
        self.next += 1
        return self.next - 1, self.bodies[self.next - 1]

    def publish_up_to(self, end: int) -> None:
        if end > self.published:
            rows = self.table.slice(self.published, end - self.published)
            _publish(self.stages.log, TRANSACTIONS, rows)
            self.published = end

    def publishing(self, behind: int) -> threading.Thread:
        """Publish every 0.2 s what was sent up to ``behind`` requests ago (answered)."""
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(0.2):
                self.publish_up_to(self.next - behind)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread

    def stop_publishing(self, thread: threading.Thread) -> None:
        self._stop.set()
        thread.join()
        self.publish_up_to(self.next)


async def closed_loop(ports: list[int], key: str, load: Load, seconds: float) -> dict[str, Any]:
    conns = [Conn(p, key) for p in ports for _ in range(CONNECTIONS_PER_SCORER)]
    await asyncio.gather(*(c.open() for c in conns))
    done: list[tuple[int, float]] = []  # (scorer index, answered at)
    errors = 0
    stop = time.perf_counter() + seconds

    async def caller(i: int, c: Conn) -> None:
        nonlocal errors
        while time.perf_counter() < stop and (item := load.take()) is not None:
            if await c.post(item[1]) == 200:
                done.append((i // CONNECTIONS_PER_SCORER, time.perf_counter()))
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller(i, c) for i, c in enumerate(conns)))
    took = time.perf_counter() - started
    for c in conns:
        c.writer.close()
    gaps = []
    for s in range(len(ports)):
        times = np.sort([t for i, t in done if i == s])
        gaps.append(np.diff(times).tolist())
    return {"rps": len(done) / took, "answered": len(done), "errors": errors,
            "wall_s": took, "gaps_s": gaps}  # fmt: skip


async def one_at_a_time(port: int, key: str, load: Load, seconds: float) -> list[float]:
    """One connection, one request at a time: each request's own latency (s)."""
    conn = Conn(port, key)
    await conn.open()
    out: list[float] = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop and (item := load.take()) is not None:
        t = time.perf_counter()
        if await conn.post(item[1]) == 200:
            out.append(time.perf_counter() - t)
    conn.writer.close()
    return out


async def open_loop(
    ports: list[int], key: str, load: Load, rate: float, seconds: float
) -> dict[str, Any]:
    per = 32
    conns = [[Conn(p, key) for _ in range(per)] for p in ports]
    await asyncio.gather(*(c.open() for cs in conns for c in cs))
    queues: list[asyncio.Queue[tuple[float, bytes] | None]] = [asyncio.Queue() for _ in ports]
    latencies: list[float] = []
    errors = 0

    async def caller(q: asyncio.Queue[tuple[float, bytes] | None], c: Conn) -> None:
        nonlocal errors
        while (job := await q.get()) is not None:
            status = await c.post(job[1])
            latencies.append((time.perf_counter() - job[0]) * 1000)
            errors += status != 200

    tasks = [asyncio.create_task(caller(queues[i], c)) for i, cs in enumerate(conns) for c in cs]
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = start + i / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        if (item := load.take()) is None:
            break
        queues[i % len(ports)].put_nowait((due, item[1]))  # latency counts from `due`
    for q in queues:
        for _ in range(per):
            q.put_nowait(None)
    await asyncio.gather(*tasks)
    for cs in conns:
        for c in cs:
            c.writer.close()
    latencies.sort()
    return {"rate": rate, "sent": len(latencies), "errors": errors,
            "p50_ms": latencies[len(latencies) // 2],
            "p99_ms": latencies[int(len(latencies) * 0.99)]}  # fmt: skip


def _trees() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    return children


def cpu_s(roots: list[int], *, descendants: bool = True) -> float:
    """CPU seconds (user + system) of the processes ``roots`` (all their threads) and,
    with ``descendants``, of their child processes."""
    children = _trees() if descendants else {}
    total, todo = 0.0, list(roots)
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def machine_busy_s() -> float:
    """CPU seconds every process of the machine has used (``/proc/stat``), ours or not."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def roles(root: Path, processes: list[Any], n: int) -> dict[str, list[int]]:
    servers = json.loads((root / "servers.json").read_text())["servers"]
    out = {s["name"].split("-")[0]: [s["pid"]] for s in servers}
    out["worker"] = [p.pid for p in processes[:n]]
    out["scorer"] = [p.pid for p in processes[n:]]
    out[SELF] = [os.getpid()]  # alone: the servers, workers and scorers are its children
    return out


def round_trips(stages: _Stages, count: int = 1000) -> dict[str, list[float]]:
    """Idle round trips from this process: Redis GET, PostgreSQL INSERT (autocommit),
    Kafka append of one record (acks=all)."""
    import psycopg
    import redis

    from loopline.events import Message

    out: dict[str, list[float]] = {"redis_rtt_s": [], "postgres_insert_s": [], "kafka_append_s": []}
    r = redis.Redis.from_url(str(stages.settings.features))
    for i in range(count):
        t = time.perf_counter()
        r.get(f"bench:rtt:{i}")
        out["redis_rtt_s"].append(time.perf_counter() - t)
    r.close()
    with psycopg.connect(str(stages.settings.decisions), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_rtt (i int, body text)")
        for i in range(count):
            t = time.perf_counter()
            conn.execute("INSERT INTO bench_rtt VALUES (%s, %s)", (i, "x" * 200))
            out["postgres_insert_s"].append(time.perf_counter() - t)
        conn.execute("DROP TABLE bench_rtt")
    stages.log.create_topic("bench.rtt", partitions=1)
    for i in range(count // 3):
        t = time.perf_counter()
        stages.log.append_many("bench.rtt", [Message(b"x" * 200, key=str(i).encode())])
        out["kafka_append_s"].append(time.perf_counter() - t)
    return out


def worker_batches(
    stages: _Stages, load: Load, rounds: int, per_round: int
) -> dict[str, list[float]]:
    """An in-process worker over every partition: warmed on a first backlog, then
    ``rounds`` times ``per_round`` transactions published and drained, each batch timed:
    its time per event, and its size."""
    everything = list(range(stages.settings.partitions))
    workers = workers_of(stages.engine, stages.log, everything)
    per_event, sizes = [], []
    for r in range(rounds + 1):
        load.publish_up_to(load.published + (2000 if r == 0 else per_round))
        load.next = load.published
        while True:
            t = time.perf_counter()
            n = sum(w.run_once() for w in workers)
            took = time.perf_counter() - t
            if n and r > 0:
                per_event.append(took / n)
                sizes.append(float(n))
            if not n and all(w.caught_up() for w in workers):
                break
    return {"worker_event_s": per_event, "worker_batch_events": sizes}


def one_n(stages: _Stages, load: Load, root: Path, n: int, seconds: float) -> dict[str, Any]:
    settings = stages.settings.model_copy(update={"workers": n, "scorers": n})
    stages.settings = settings
    stages.env.update(LOOPLINE_WORKERS=str(n), LOOPLINE_SCORERS=str(n))
    stages.processes.clear()
    try:
        say(f"N={n}: start {n} feature workers and {n} scorers")
        stages.start_workers()
        stages.start_scorers()
        ports, key = stages.http.ports, stages.http.key
        asyncio.run(closed_loop(ports, key, load, 3))  # warm-up
        alone = asyncio.run(one_at_a_time(ports[0], key, load, 5))
        load.publish_up_to(load.next)
        stages.catch_up()
        say(f"N={n}: closed loop {seconds:.0f} s")
        who = roles(root, stages.processes, n)
        before = {k: cpu_s(v, descendants=k != SELF) for k, v in who.items()}
        machine = machine_busy_s()
        thread = load.publishing(behind=CONNECTIONS_PER_SCORER * n)
        closed = asyncio.run(closed_loop(ports, key, load, seconds))
        load.stop_publishing(thread)
        used = {k: cpu_s(v, descendants=k != SELF) - before[k] for k, v in who.items()}
        machine = machine_busy_s() - machine
        t = time.perf_counter()
        stages.catch_up()
        catch_up_closed = time.perf_counter() - t
        rate = closed["rps"] / 2
        say(f"N={n}: {closed['rps']:.0f} tx/s; open loop at {rate:.0f}/s for {seconds:.0f} s")
        thread = load.publishing(behind=64 * n)
        half = asyncio.run(open_loop(ports, key, load, rate, seconds))
        load.stop_publishing(thread)
        t = time.perf_counter()
        stages.catch_up()
        catch_up_open = time.perf_counter() - t
    finally:
        _stop(stages.processes)
    answered = closed["answered"]
    return {
        "n": n,
        "tx_per_s": round(closed["rps"], 1),
        "p50_ms": round(half["p50_ms"], 2),
        "p99_ms": round(half["p99_ms"], 2),
        "half_load_rate": round(rate, 1),
        "errors": closed["errors"] + half["errors"],
        "worker_catch_up_s": round(catch_up_closed, 2),
        "worker_catch_up_after_open_loop_s": round(catch_up_open, 2),
        "cpu_ms_per_tx": {k: round(1000 * v / answered, 4) for k, v in used.items()},
        "scorer_cpu_share": round(used["scorer"] / (closed["wall_s"] * n), 3),
        "cpu_cores_busy": round(sum(used.values()) / closed["wall_s"], 3),
        "machine_cores_busy": round(machine / closed["wall_s"], 3),  # anyone's processes
        "unloaded_p50_ms": round(1000 * float(np.median(alone)), 2),
        "_gaps_s": closed["gaps_s"],
        "_alone_s": alone,
    }


def run(ns: list[int], seconds: float, customers: int, load_days: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "scale"
        say("loopline up --profile scale (noida-db, redis-server, PostgreSQL, MLflow)")
        settings_file = up(root, partitions=max(4, max(ns)), processes=1)
        try:
            return _measure(root, settings_file, ns, seconds, customers, load_days)
        finally:
            down(root)
            say("servers stopped")


def _measure(
    root: Path, settings_file: Path, ns: list[int], seconds: float, customers: int, load_days: int
) -> dict[str, Any]:
    import secrets

    settings = load_settings(settings_file)
    assert settings.events is not None
    assert settings.decisions is not None
    log = open_events(settings.events, keys=settings.subject_keys or settings.decisions)
    days = STREAM_DAY + load_days
    sim = simulate(replace(profile("full", customers=customers), days=days), seed=0)
    keys = settings.state / "keys"
    env = {**os.environ, "LOOPLINE_SETTINGS": str(settings_file.resolve()),
           "LOOPLINE_TOKEN_KEY": secrets.token_hex(32),
           "LOOPLINE_TRUSTED_KEYS": str((keys / "signing.pub").resolve()),
           "LOOPLINE_SIGNING_KEY": str((keys / "signing.key").resolve())}  # fmt: skip
    try:
        stages = _Stages(settings, log, sim, _Quiet(), [], env)
        say(f"simulated {sim.transactions.num_rows} transactions; train the champion")
        with contextlib.redirect_stdout(sys.stderr):  # MLflow prints its run's address
            stages.train_champion()
        create_topics(log, settings)
        load = Load(stages, stages.tx_end)
        say("round trips to Redis, PostgreSQL and Kafka; an in-process worker's batches")
        samples: dict[str, Any] = round_trips(stages)
        samples |= worker_batches(stages, load, rounds=60, per_round=200)
        results = [one_n(stages, load, root, n, seconds) for n in ns]
        if load.next >= len(load.bodies):
            say("warning: the simulated transactions ran out; raise --customers")
    finally:
        log.close()
    return {
        "results": results,
        "samples": samples,
        "transactions_left": len(load.bodies) - load.next,
    }


def cores() -> int:
    """The cores this process may run on: its affinity (a container's or taskset's
    limit), which ``os.cpu_count()`` ignores."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=cores())
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument(
        "--load-days",
        type=int,
        default=80 * max(1, cores() // 2),
        help="simulated days of transactions to send (~2 a customer a day; more cores send more)",
    )
    parser.add_argument("--samples", type=Path, default=Path(".loopline/scale-samples.json"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--save", action="store_true", help="also write benchmarks/results/scale.json"
    )
    args = parser.parse_args()
    top = min(args.max_n, cores())
    ns = [n for n in (2**i for i in range(12)) if n <= top]
    out = run(ns, args.seconds, args.customers, args.load_days)
    results = out["results"]
    first, last = results[0], results[-1]
    efficiency = last["tx_per_s"] / (last["n"] * first["tx_per_s"])
    record = {
        "benchmark": "scale",
        "cores": cores(),
        "seconds": args.seconds,
        "per_n": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
        "samples": out["samples"]
        | {f"scorer_gap_s_n{r['n']}": r["_gaps_s"] for r in results}
        | {f"scorer_latency_s_n{r['n']}": r["_alone_s"] for r in results},
    }
    args.samples.parent.mkdir(parents=True, exist_ok=True)
    args.samples.write_text(json.dumps(record))
    say(f"samples written to {args.samples}")
    summary = {
        "benchmark": "scale",
        "cores": cores(),
        "n": [r["n"] for r in results],
        "tx_per_s": {r["n"]: r["tx_per_s"] for r in results},
        "p50_ms": {r["n"]: r["p50_ms"] for r in results},
        "p99_ms": {r["n"]: r["p99_ms"] for r in results},
        "scaling_efficiency": round(efficiency, 3),
        "per_n": record["per_n"],
        "samples_file": str(args.samples),
        "transactions_left": out["transactions_left"],
    }
    if args.save:
        from loopline.ops import save_result

        saved_to = save_result("scale", summary)
        print(f"saved {saved_to}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"scale-out on {cores()} cores (servers and load generator share them)")
    for col in ("N", "tx/s", "p50 ms", "p99 ms", "worker catch-up s", "CPU ms/tx"):
        table.add_column(col, justify="right")
    for r in results:
        cpu = sum(r["cpu_ms_per_tx"].values())
        table.add_row(str(r["n"]), f"{r['tx_per_s']:,.0f}", str(r["p50_ms"]), str(r["p99_ms"]),
                      str(r["worker_catch_up_s"]), f"{cpu:.2f}")  # fmt: skip
    Console().print(table)
    print(f"scaling_efficiency {efficiency:.3f}; median of none: one run per N")


if __name__ == "__main__":
    main()
