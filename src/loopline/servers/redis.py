"""A redis-server from Debian's ``redis-server`` package, on 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path

from loopline.exceptions import ConfigError
from loopline.servers.base import LocalServer, free_port


def redis_server(
    data_dir: Path, *, port: int | None = None, appendfsync: str = "everysec"
) -> LocalServer:
    """A redis-server with an append-only file under ``data_dir``.

    ``appendfsync="everysec"`` is Redis's default trade-off: a write survives a crash of
    redis-server itself, and at most one second of writes is lost on power failure.
    """
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise ConfigError(
            "redis-server is not installed: apt-get install redis-server "
            "(make test installs it through scripts/install-system-deps.sh)."
        )
    port = port or free_port()
    argv = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        appendfsync,
        "--save",
        "",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
    ]
    return LocalServer(
        name="redis-server",
        argv=argv,
        port=port,
        url=f"redis://127.0.0.1:{port}/0",
        data_dir=data_dir,
    )
