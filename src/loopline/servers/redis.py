"""A redis-server from Debian's ``redis-server`` package, on 127.0.0.1, with a password."""

from __future__ import annotations

import shutil
from pathlib import Path

from loopline.exceptions import ConfigError
from loopline.servers.base import LocalServer, free_port
from loopline.servers.credentials import new_password, write_private


def redis_server(
    data_dir: Path,
    *,
    port: int | None = None,
    appendfsync: str = "everysec",
    password: str | None = None,
) -> LocalServer:
    """A redis-server with an append-only file under ``data_dir``.

    Every client must authenticate (``requirepass``, the default user's password) with
    ``password`` (default: a new random one); the server's URL carries it
    (``redis://:PASSWORD@127.0.0.1:PORT/0``), so ``redis.Redis.from_url`` needs nothing
    else. The password is in ``data_dir/redis.conf`` (mode 0600), not on the command line.

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
    password = password or new_password()
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "redis.conf"
    write_private(config, f"requirepass {password}\n")
    argv = [
        binary,
        str(config.resolve()),  # the server runs in data_dir
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir.resolve()),
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
        url=f"redis://:{password}@127.0.0.1:{port}/0",
        data_dir=data_dir,
    )
