"""Which partition a key goes to, and which partitions a group member owns.

Every backend uses these two functions, so a key lands in the same partition on the
embedded log, Kafka and Redis, and a group splits its partitions the same way.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from loopline.events.base import TopicPartition


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of ``key``: CRC-32 of the key modulo the partition count.

    This is librdkafka's ``consistent`` partitioner, so producers written with
    confluent-kafka (``partitioner=consistent``) agree with loopline.

    >>> partition_for(b"card-42", 8)
    6
    """
    return zlib.crc32(key) % partitions


def assign_round_robin(
    partitions: Sequence[TopicPartition], members: Sequence[str], member: str
) -> list[TopicPartition]:
    """The partitions ``member`` owns when ``members`` share ``partitions`` round-robin.

    Both lists are sorted first, so every member computes the same split without
    talking to the others.
    """
    ordered = sorted(members)
    if member not in ordered:
        return []
    index, count = ordered.index(member), len(ordered)
    return [tp for i, tp in enumerate(sorted(partitions)) if i % count == index]
