"""The event log: typed event schemas, a partitioned log with consumer groups, dead letters.

Backends: :class:`EmbeddedLog` (SQLite WAL file, the default, no server), ``KafkaLog``
(``loopline.events.kafka``, extra ``kafka``) and ``RedisLog`` (``loopline.events.redis``,
extra ``redis``). :func:`open_log` picks one from a URL.
"""

from loopline.events.backends import open_log
from loopline.events.base import Consumer, EventLog, Message, OffsetReset, Record, TopicPartition
from loopline.events.deadletter import (
    DeadLetter,
    DeadLetterQueue,
    dead_letter_topic,
    decode_or_dead_letter,
)
from loopline.events.embedded import EmbeddedLog
from loopline.events.partitioning import assign_round_robin, partition_for
from loopline.events.schema import Codec, Event

__all__ = [
    "Codec",
    "Consumer",
    "DeadLetter",
    "DeadLetterQueue",
    "EmbeddedLog",
    "Event",
    "EventLog",
    "Message",
    "OffsetReset",
    "Record",
    "TopicPartition",
    "assign_round_robin",
    "dead_letter_topic",
    "decode_or_dead_letter",
    "open_log",
    "partition_for",
]
