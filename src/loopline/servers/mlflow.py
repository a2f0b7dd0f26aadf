"""An MLflow tracking server (the ``mlflow`` package's ``mlflow server``), on 127.0.0.1.

Runs and the registry in the database at ``backend_uri`` (PostgreSQL at scale), model
files served by the server itself (``--serve-artifacts``) from a folder under
``data_dir``, so clients need no shared file system."""

from __future__ import annotations

import sys
from pathlib import Path

from loopline.servers.base import LocalServer, free_port


def mlflow_server(data_dir: Path, *, backend_uri: str, port: int | None = None) -> LocalServer:
    """``mlflow server`` on 127.0.0.1 with its store at ``backend_uri``; its URL is
    ``http://127.0.0.1:PORT``, the tracking URI clients use."""
    port = port or free_port()
    artifacts = (data_dir / "artifacts").resolve()
    return LocalServer(
        name="mlflow",
        argv=[
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            backend_uri,
            "--serve-artifacts",
            "--artifacts-destination",
            artifacts.as_uri(),
        ],
        port=port,
        url=f"http://127.0.0.1:{port}",
        data_dir=data_dir,
        ready_timeout_s=90.0,  # it migrates an empty database's schema first
    )
