"""A PostgreSQL server from Debian's ``postgresql`` package, on 127.0.0.1, with
password (SCRAM-SHA-256) authentication."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from loopline.exceptions import ConfigError
from loopline.servers.base import LocalServer, free_port
from loopline.servers.credentials import new_password


def _bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        raise ConfigError(
            "PostgreSQL is not installed: apt-get install postgresql "
            "(make test installs it through scripts/install-system-deps.sh)."
        )
    return found[-1].parent


class PostgresServer(LocalServer):
    """A throw-away cluster: ``initdb`` on first start, listening on 127.0.0.1 only.

    Every connection, over TCP or the cluster's Unix socket, authenticates with
    SCRAM-SHA-256 as the superuser ``postgres`` with ``password`` (default: a new random
    one); :attr:`url` carries it, so clients connect with the URL alone.

    PostgreSQL refuses to run as root; as root, it runs as the ``postgres`` user with its
    cluster in a folder that user owns (removed on :meth:`stop`).
    """

    def __init__(
        self, data_dir: Path, *, port: int | None = None, password: str | None = None
    ) -> None:
        bindir = _bindir()
        self.password = password or new_password()
        user = "postgres" if os.geteuid() == 0 else None
        if user is not None:  # a folder postgres can reach and own (pytest's are 0700 root)
            self.cluster = Path(tempfile.mkdtemp(prefix="loopline-pg-"))
            shutil.chown(self.cluster, user, user)
        else:
            self.cluster = (data_dir / "cluster").resolve()  # the server runs in data_dir
        self.initdb = [
            str(bindir / "initdb"),
            "-D",
            str(self.cluster),
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
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
                "password_encryption=scram-sha-256",
                "-c",
                "max_connections=50",
            ],
            port=port,
            url=f"postgresql://postgres:{self.password}@127.0.0.1:{port}/postgres",
            data_dir=data_dir,
            user=user,
        )

    def start(self) -> None:
        if not (self.cluster / "PG_VERSION").exists():
            self._create_cluster()
        super().start()

    def _create_cluster(self) -> None:
        """``initdb`` with the superuser's password read from a file of mode 0600 that
        exists only while it runs (mkstemp creates it so; never on a command line)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd, pwfile = tempfile.mkstemp(prefix="loopline-pg-password-")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(f"{self.password}\n")
            if self.user is not None:
                shutil.chown(pwfile, self.user, self.user)
            argv = [*self.initdb, f"--pwfile={pwfile}"]
            subprocess.run(argv, check=True, capture_output=True, user=self.user)
        finally:
            os.unlink(pwfile)

    def stop(self, *, kill: bool = False) -> None:
        super().stop(kill=kill)
        if self.user is not None:
            shutil.rmtree(self.cluster, ignore_errors=True)


def postgres_server(
    data_dir: Path, *, port: int | None = None, password: str | None = None
) -> PostgresServer:
    """A PostgreSQL server with its log under ``data_dir`` (see :class:`PostgresServer`)."""
    return PostgresServer(data_dir, port=port, password=password)
