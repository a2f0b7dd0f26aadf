"""A service on a local port, served by uvicorn on a thread of its own: for demos and
tests that talk to it over real HTTP from the same process."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def running(app: Any, *, host: str = "127.0.0.1", start_s: float = 30.0) -> Iterator[int]:
    """Serve ``app`` (lifespan on: its background tasks run) on a free port; yield the
    port; stop it on leaving."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=0, log_level="warning", access_log=False,
                            lifespan="on")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="loopline-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("The HTTP service did not start; see the log above.")
        time.sleep(0.02)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=30)
