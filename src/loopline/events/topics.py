"""Topic names and layouts: what every backend checks, in one place."""

from __future__ import annotations

import re

from loopline.exceptions import ConfigError, TopicExistsError, TopicNotFoundError

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


def check_same_layout(topic: str, url: str, existing: int, wanted: int) -> None:
    """Raise :class:`TopicExistsError` unless an existing topic has the wanted partitions."""
    if existing != wanted:
        raise TopicExistsError(
            f"Topic {topic!r} exists on {url} with {existing} partitions, not "
            f"{wanted}. Use another name or the existing partition count."
        )


def topic_not_found(topic: str, url: str) -> TopicNotFoundError:
    return TopicNotFoundError(
        f"Topic {topic!r} does not exist on {url}. "
        f"Create it first: log.create_topic({topic!r}, partitions=N)."
    )


def check_partition(topic: str, partition: int, partitions: int) -> None:
    """Raise :class:`TopicNotFoundError` unless ``partition`` is one of the topic's."""
    if not 0 <= partition < partitions:
        raise TopicNotFoundError(
            f"Topic {topic!r} has partitions 0..{partitions - 1}; "
            f"partition {partition} does not exist."
        )
