"""An MLflow tracking server (the ``mlflow`` package's ``mlflow server``), on 127.0.0.1,
with HTTP basic authentication (MLflow's ``basic-auth`` app, ``pip install mlflow[auth]``).

Runs and the registry in the database at ``backend_uri`` (PostgreSQL at scale), model
files served by the server itself (``--serve-artifacts``) from a folder under
``data_dir``, so clients need no shared file system."""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from loopline.servers.base import LocalServer, free_port
from loopline.servers.credentials import new_password, write_private

# default_permission: users other than the admin get no access until granted some (the
# profile has one client identity, the admin; a user added later sees only what it is
# given). auth_cache_ttl_seconds: a password is checked against its PBKDF2 hash (about
# 1 s here) once a minute, not on every request; the one worker also sees every change
# of a password at once (MLflow's cache is per worker).
_AUTH_CONFIG = """\
[mlflow]
default_permission = NO_PERMISSIONS
database_uri = sqlite:///{database}
admin_username = {username}
admin_password = {password}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 60
"""


def mlflow_server(
    data_dir: Path,
    *,
    backend_uri: str,
    port: int | None = None,
    username: str = "admin",
    password: str | None = None,
) -> LocalServer:
    """``mlflow server`` on 127.0.0.1 with its store at ``backend_uri``.

    Every request but ``/health`` must carry HTTP basic credentials: ``username`` (the
    admin) with ``password`` (default: a new random one). The server's URL,
    ``http://USERNAME:PASSWORD@127.0.0.1:PORT``, is the tracking URI clients use
    (:class:`loopline.registry.Registry` takes the credentials from it). The users and
    their permissions are in ``data_dir/auth.db``; the admin's password is in
    ``data_dir/basic_auth.ini`` (mode 0600) and ``backend_uri``, which may hold the
    database's password, in the server's environment: neither is on its command line.
    """
    port = port or free_port()
    password = password or new_password()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    auth_config = data_dir / "basic_auth.ini"
    write_private(
        auth_config,
        _AUTH_CONFIG.format(database=data_dir / "auth.db", username=username, password=password),
    )
    return LocalServer(
        name="mlflow",
        argv=[
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--app-name",
            "basic-auth",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--serve-artifacts",
            "--artifacts-destination",
            (data_dir / "artifacts").as_uri(),
        ],
        port=port,
        url=f"http://{username}:{password}@127.0.0.1:{port}",
        data_dir=data_dir,
        env={
            "MLFLOW_BACKEND_STORE_URI": backend_uri,
            "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": new_password(),  # signs its forms' CSRF tokens
        },
        ready_timeout_s=90.0,  # it migrates an empty database's schema first
        ready=_answers(f"http://127.0.0.1:{port}/health"),
    )


def _answers(url: str) -> Callable[[], bool]:
    """Whether ``url`` answers 200: the app is loaded and its stores are open."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (http only)
                return bool(response.status == 200)
        except OSError:
            return False

    return probe
