"""Topic names: what every backend accepts, checked in one place."""

from __future__ import annotations

import re

from loopline.exceptions import ConfigError

_VALID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def check_topic(topic: str, *, partitions: int = 1) -> None:
    """Raise :class:`ConfigError` unless ``topic`` and ``partitions`` are usable everywhere.

    The rule is Kafka's: ASCII letters, digits, ``.``, ``_`` and ``-``.
    """
    if not _VALID.match(topic):
        raise ConfigError(
            f"Topic name {topic!r} is invalid: use 1-200 characters from "
            "letters, digits, '.', '_' and '-' (Kafka's rule, which every backend shares)."
        )
    if not isinstance(partitions, int) or partitions < 1:
        raise ConfigError(f"Topic {topic!r} needs 'partitions' >= 1. Got {partitions!r}.")
