"""Each local server refuses a client without this run's password, and listens on
127.0.0.1 only; the password is never on a command line (which every user can read).
Real servers, started from installed packages."""

from __future__ import annotations

import base64
import stat
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from loopline.servers import LocalServer, postgres_server, redis_server
from loopline.servers.mlflow import mlflow_server

LOOPBACK = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it


def listening(port: int) -> set[str]:
    """The addresses a socket listens on at ``port`` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def command_line(server: LocalServer) -> str:
    return Path(f"/proc/{server.pid}/cmdline").read_text().replace("\0", " ")


@pytest.mark.postgres
def test_postgres_requires_its_scram_password(tmp_path: Path) -> None:
    with postgres_server(tmp_path) as server:
        password = urlsplit(server.url).password
        assert password
        with psycopg.connect(server.url) as conn:
            method, stored = conn.execute(
                "SELECT current_setting('password_encryption'), rolpassword "
                "FROM pg_authid WHERE rolname = 'postgres'"
            ).fetchone()  # type: ignore[misc]
        assert method == "scram-sha-256"
        assert stored.startswith("SCRAM-SHA-256$")
        tcp = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
        socket = f"host={server.cluster} port={server.port} user=postgres dbname=postgres"
        for conninfo in (tcp, f"{tcp} password=wrong", socket, f"{socket} password=wrong"):
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(conninfo, connect_timeout=5)
        assert listening(server.port) == {LOOPBACK}
        assert password not in command_line(server)


@pytest.mark.redis
def test_redis_requires_its_password(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        password = urlsplit(server.url).password
        assert password
        assert redis.Redis.from_url(server.url).ping()
        once = Retry(NoBackoff(), 0)  # a refusal is not retried (redis-py retries 3 times)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=server.port, retry=once).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=server.port, password="wrong", retry=once).ping()
        assert stat.S_IMODE((tmp_path / "redis.conf").stat().st_mode) == 0o600
        assert listening(server.port) == {LOOPBACK}
        assert password not in command_line(server)


@pytest.mark.slow
def test_mlflow_requires_basic_auth(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"  # at scale, with the database's password
    with mlflow_server(tmp_path / "mlflow", backend_uri=store) as server:
        url = urlsplit(server.url)
        assert url.username == "admin"
        assert url.password
        search = f"http://127.0.0.1:{server.port}/api/2.0/mlflow/registered-models/search"

        def status(user: str | None, password: str) -> int:
            request = urllib.request.Request(search)
            if user is not None:
                token = base64.b64encode(f"{user}:{password}".encode()).decode()
                request.add_header("Authorization", f"Basic {token}")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        assert status(None, "") == 401
        assert status("admin", "wrong") == 401
        assert status("admin", url.password) == 200
        config = tmp_path / "mlflow" / "basic_auth.ini"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert "default_permission = NO_PERMISSIONS" in config.read_text()
        assert listening(server.port) == {LOOPBACK}
        for secret in (url.password, store):
            assert secret not in command_line(server)


@pytest.mark.kafka
def test_the_broker_without_authentication_listens_on_loopback_only(
    kafka_server: LocalServer,
) -> None:
    assert listening(kafka_server.port) == {LOOPBACK}
