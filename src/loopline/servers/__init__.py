"""Local real servers for development, tests and benchmarks, on 127.0.0.1 only.

Each starts a real server from an installed package (a broker wheel, a Debian package)
on a free port with its data in a folder of its own, waits until it accepts
connections, and stops it afterwards::

    with redis_server(tmp_path) as server:
        log = open_log(server.url)
"""

from loopline.servers.base import LocalServer, free_port
from loopline.servers.credentials import masked
from loopline.servers.kafka import noida_broker, tansu_broker
from loopline.servers.milvus import milvus_server
from loopline.servers.postgres import postgres_server
from loopline.servers.redis import redis_server

__all__ = [
    "LocalServer",
    "free_port",
    "masked",
    "milvus_server",
    "noida_broker",
    "postgres_server",
    "redis_server",
    "tansu_broker",
]
