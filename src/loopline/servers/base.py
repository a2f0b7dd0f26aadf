"""A server process started from an installed binary and stopped with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from loopline.exceptions import BackendUnavailableError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_DETACHED: list[subprocess.Popen[bytes]] = []  # servers meant to outlive their object


class LocalServer:
    """One server process listening on ``127.0.0.1:port``.

    Args:
        name: What it is, for messages (``"redis-server"``).
        argv: The command line.
        port: The port it listens on.
        url: How clients reach it (``redis://127.0.0.1:port/0``).
        data_dir: Its folder; its output goes to ``server.log`` there.
        env: Extra environment variables.
        ready_timeout_s: How long to wait for the server to be ready.
        ready: Whether it is ready, asked once its port accepts connections (an HTTP
            server may accept them before it answers); default: it is.
        user: Run it as this user (servers such as PostgreSQL refuse to run as root).
    """

    def __init__(
        self,
        *,
        name: str,
        argv: Sequence[str],
        port: int,
        url: str,
        data_dir: Path,
        env: dict[str, str] | None = None,
        ready_timeout_s: float = 30.0,
        ready: Callable[[], bool] | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.url = url
        self.data_dir = data_dir
        self.env = env or {}
        self.ready_timeout_s = ready_timeout_s
        self.ready = ready
        self.user = user
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def start(self) -> None:
        """Start the process and wait until it is ready (its port accepts connections
        and ``ready``, if given, says so)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self._process = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env={**os.environ, **self.env},
                start_new_session=True,
                user=self.user,
            )
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BackendUnavailableError(
                    f"{self.name} exited with code {self._process.returncode} before it was ready "
                    f"on 127.0.0.1:{self.port}; its output: {self.log_path}"
                )
            if self._accepts() and (self.ready is None or self.ready()):
                return
            time.sleep(0.05)
        self.stop()
        raise BackendUnavailableError(
            f"{self.name} was not ready on 127.0.0.1:{self.port} within "
            f"{self.ready_timeout_s:g}s; its output: {self.log_path}"
        )

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s; at once when ``kill``)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def detach(self) -> int:
        """Leave the server running past this object (``loopline up``: ``down`` stops it
        by the returned pid); stop() no longer applies."""
        process, self._process = self._process, None
        if process is None:
            raise RuntimeError(f"{self.name} is not running.")
        _DETACHED.append(process)  # kept, so that its collection does not warn of it
        return process.pid

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
