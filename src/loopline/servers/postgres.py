"""A PostgreSQL server from Debian's ``postgresql`` package, on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from loopline.exceptions import ConfigError
from loopline.servers.base import LocalServer, free_port


def _bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        raise ConfigError(
            "PostgreSQL is not installed: apt-get install postgresql "
            "(make test installs it through scripts/install-system-deps.sh)."
        )
    return found[-1].parent


class PostgresServer(LocalServer):
    """A throw-away cluster: ``initdb`` on first start, trust auth on 127.0.0.1 only.

    PostgreSQL refuses to run as root; as root, it runs as the ``postgres`` user with its
    cluster in a folder that user owns (removed on :meth:`stop`).
    """

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        bindir = _bindir()
        user = "postgres" if os.geteuid() == 0 else None
        if user is not None:  # a folder postgres can reach and own (pytest's are 0700 root)
            self.cluster = Path(tempfile.mkdtemp(prefix="loopline-pg-"))
            shutil.chown(self.cluster, user, user)
        else:
            self.cluster = data_dir / "cluster"
        self.initdb = [
            str(bindir / "initdb"),
            "-D",
            str(self.cluster),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]
        port = port or free_port()
        super().__init__(
            name="postgres",
            argv=[
                str(bindir / "postgres"),
                "-D",
                str(self.cluster),
                "-p",
                str(port),
                "-k",
                str(self.cluster),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=50",
            ],
            port=port,
            url=f"postgresql://postgres@127.0.0.1:{port}/postgres",
            data_dir=data_dir,
            user=user,
        )

    def start(self) -> None:
        if not (self.cluster / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            subprocess.run(self.initdb, check=True, capture_output=True, user=self.user)
        super().start()

    def stop(self, *, kill: bool = False) -> None:
        super().stop(kill=kill)
        if self.user is not None:
            shutil.rmtree(self.cluster, ignore_errors=True)


def postgres_server(data_dir: Path, *, port: int | None = None) -> PostgresServer:
    """A PostgreSQL server with its log under ``data_dir``."""
    return PostgresServer(data_dir, port=port)
