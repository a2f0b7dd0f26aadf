"""Open an event log from a URL: the one place that maps URL schemes to backends.

========================  =========================================================
URL                       backend
========================  =========================================================
``file:///path/log.db``   :class:`~loopline.events.embedded.EmbeddedLog` (default)
``/path/log.db``          the same, as a plain path
``kafka://host:port``     :class:`~loopline.events.kafka.KafkaLog` (``loopline[kafka]``)
``redis://host:port/db``  :class:`~loopline.events.redis.RedisLog` (``loopline[redis]``)
========================  =========================================================
"""

from __future__ import annotations

from urllib.parse import urlsplit

from loopline.events.base import EventLog
from loopline.exceptions import ConfigError
from loopline.servers.credentials import masked


def open_log(url: str, *, timeout_s: float = 10.0) -> EventLog:
    """The event log at ``url``; network backends fail within ``timeout_s`` if unreachable."""
    scheme = urlsplit(url).scheme
    if scheme in ("", "file"):
        from loopline.events.embedded import EmbeddedLog

        return EmbeddedLog(url.removeprefix("file://"))
    if scheme == "kafka":
        from loopline.events.kafka import KafkaLog

        return KafkaLog(url.removeprefix("kafka://"), timeout_s=timeout_s)
    if scheme in ("redis", "rediss"):
        from loopline.events.redis import RedisLog

        return RedisLog(url, timeout_s=timeout_s)
    raise ConfigError(
        f"Event log URL {masked(url)!r} has unknown scheme {scheme!r}: use file:///path/log.db, "
        "kafka://host:port or redis://host:port/db."
    )
