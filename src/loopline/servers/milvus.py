"""A Milvus Lite server (the ``milvus-lite`` wheel) on 127.0.0.1, speaking Milvus's gRPC API."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from loopline.exceptions import ConfigError
from loopline.servers.base import LocalServer, free_port


def milvus_server(data_dir: Path, *, port: int | None = None) -> LocalServer:
    """A Milvus Lite server with its data under ``data_dir/data``.

    Clients use pymilvus exactly as against a Milvus cluster:
    ``MilvusClient(uri=server.url)`` (``http://127.0.0.1:PORT``); loopline's
    :func:`~loopline.vectors.open_vectors` takes the same URL. It is ready once a client
    can list its collections.
    """
    binary = shutil.which("milvus-lite") or str(Path(sys.executable).with_name("milvus-lite"))
    if not Path(binary).exists():
        raise ConfigError("milvus-lite is not installed: pip install 'loopline[vectors]'.")
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        "server",
        "--data-dir",
        str((data_dir / "data").resolve()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]

    def ready() -> bool:
        from pymilvus import MilvusClient

        try:
            client = MilvusClient(uri=url, timeout=2)
            try:
                client.list_collections()
            finally:
                client.close()
        except Exception:  # not answering yet: asked again until the deadline
            return False
        return True

    return LocalServer(
        name="milvus-lite", argv=argv, port=port, url=url, data_dir=data_dir, ready=ready
    )
