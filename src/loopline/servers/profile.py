"""``loopline up --profile scale`` and ``loopline down``: the scale-out profile's servers,
real and local, to try it on one machine.

``up`` starts a noida-db Kafka broker (it keeps its data on disk), redis-server,
PostgreSQL (the prediction log, and MLflow's store in a database of its own) and an
MLflow tracking server, each on a free port of 127.0.0.1 with its data under ``root``,
and writes ``root/settings.toml``, the settings file every loopline command reads with
``--settings`` or ``$LOOPLINE_SETTINGS``. The servers outlive the command; their process
ids are in ``root/servers.json``, which ``down`` reads to stop them. Each ``up`` starts
a fresh cluster: the data of the previous one is removed.

Every server but the broker requires credentials generated for this run: PostgreSQL
(SCRAM-SHA-256), Redis (``requirepass``) and MLflow (HTTP basic auth, its ``basic-auth``
app). The URLs in the settings file carry them, so the file is created with mode 0600;
nothing else ``up`` writes or reports holds a password (:func:`masked` URLs). The broker
has no authentication (see :mod:`loopline.servers.kafka`): it listens on loopback only.
A new ``up`` is a new set of credentials.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from loopline.exceptions import ConfigError
from loopline.servers.base import LocalServer
from loopline.servers.credentials import masked, write_private
from loopline.servers.kafka import noida_broker
from loopline.servers.mlflow import mlflow_server
from loopline.servers.postgres import PostgresServer
from loopline.servers.redis import redis_server

DEFAULT_ROOT = Path(".loopline/scale")
PROFILES = ("scale",)


@dataclass(frozen=True)
class Running:
    """A server ``up`` started; ``url`` with its password masked."""

    name: str
    pid: int
    url: str
    log: str


def up(
    root: Path = DEFAULT_ROOT,
    *,
    partitions: int = 4,
    processes: int = 2,
    started: Callable[[Running], None] = lambda _: None,
) -> Path:
    """Start the servers; return the settings file. ``partitions`` of the transactions
    topic, and ``processes`` scorers and feature workers each."""
    if any(_alive(r.pid) for r in _recorded(root)):
        raise ConfigError(f"The scale profile is already up under {root}: `loopline down` first.")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, mode=0o700)
    servers: list[LocalServer] = []
    running: list[Running] = []
    try:
        broker, redis = noida_broker(root / "kafka"), redis_server(root / "redis")
        postgres = PostgresServer(root / "postgres")
        for server in (broker, redis, postgres):
            _start(server, servers, running, started)
        _create_database(postgres.url, "mlflow")
        store = postgres.url.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0]
        mlflow = mlflow_server(root / "mlflow", backend_uri=f"{store}/mlflow")
        _start(mlflow, servers, running, started)
        cluster = {"postgres_cluster": str(postgres.cluster)}
    except BaseException:
        for server in servers:
            server.stop()
        raise
    settings = root / "settings.toml"
    write_private(
        settings,
        "# the scale-out profile on local servers (loopline up --profile scale)\n"
        "# the URLs carry this run's passwords: keep this file 0600\n"
        "# the broker has no authentication; it listens on loopback only\n"
        f'events = "{broker.url}"\n'
        f'features = "{redis.url}"\n'
        f'decisions = "{postgres.url}"\n'
        f'registry = "{mlflow.url}"\n'
        f'state = "{(root / "serving").resolve()}"\n'
        f"partitions = {partitions}\n"
        f"scorers = {processes}\n"
        f"workers = {processes}\n",
    )
    # the cluster's model-signing key: what its trainers register is signed with it, and
    # its scorers trust its public half (docs/registry.md, "Signed bundles")
    from loopline.registry.signing import create_key

    create_key(root / "serving" / "keys" / "signing.key")
    (root / "servers.json").write_text(
        json.dumps({"servers": [asdict(r) for r in running], **cluster}, indent=2)
    )
    for server in servers:
        server.detach()  # they outlive this command; `down` stops them by pid
    return settings


def down(root: Path = DEFAULT_ROOT, *, stopped: Callable[[str], None] = lambda _: None) -> int:
    """Stop the servers ``up`` started under ``root`` (SIGTERM, SIGKILL after 10 s);
    return how many were running."""
    path = root / "servers.json"
    if not path.exists():
        return 0
    recorded = json.loads(path.read_text())
    count = 0
    for r in reversed([Running(**r) for r in recorded["servers"]]):
        if _alive(r.pid):
            _stop(r.pid)
            count += 1
        stopped(r.name)
    cluster = recorded.get("postgres_cluster")
    if cluster and not Path(cluster).is_relative_to(root.resolve()):
        shutil.rmtree(cluster, ignore_errors=True)  # a temporary folder (as root)
    path.unlink()
    return count


def _start(
    server: LocalServer,
    servers: list[LocalServer],
    running: list[Running],
    started: Callable[[Running], None],
) -> None:
    server.start()
    servers.append(server)
    assert server.pid is not None
    r = Running(server.name, server.pid, masked(server.url), str(server.log_path))
    running.append(r)
    started(r)


def _create_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def _recorded(root: Path) -> list[Running]:
    path = root / "servers.json"
    if not path.exists():
        return []
    return [Running(**r) for r in json.loads(path.read_text())["servers"]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _stop(pid: int) -> None:
    os.killpg(pid, signal.SIGTERM)  # each server leads its own process group
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
