"""The Redis Streams backend (``pip install loopline[redis]``).

Each partition is one stream, ``ll:{<topic>/<partition>}``; the braces hash-tag a
partition's keys to one slot so it also works on Redis Cluster. A record's offset ``n``
is its stream ID ``0-(n+1)``, assigned by a Lua script that appends a whole batch
atomically, so offsets are dense and ordered like Kafka's.

Consumer groups are Redis's own (``XREADGROUP`` / ``XACK``): the pending-entries list
holds what a member read but has not committed. Partitions are split among live
members round-robin (membership is a sorted set of heartbeats), so one partition has
one reader and keeps its order; a member that takes a partition over first claims the
previous owner's pending entries (``XAUTOCLAIM``) and delivers them before new ones.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from loopline.events.base import Consumer, Message, OffsetReset, Record, TopicPartition
from loopline.events.partitioning import assign_round_robin, partition_for
from loopline.events.topics import (
    check_partition,
    check_same_layout,
    check_topic,
    topic_not_found,
)
from loopline.exceptions import (
    BackendUnavailableError,
    ConfigError,
    EventLogError,
)
from loopline.servers.credentials import masked

_TOPICS = "ll:topics"

# KEYS: stream, meta. ARGV: (timestamp, key-or-empty, has-key flag, value) per record.
_APPEND = """
local nxt = tonumber(redis.call('HGET', KEYS[2], 'next') or '0')
local max_ts = tonumber(redis.call('HGET', KEYS[2], 'max_ts') or '0')
local first = nxt
for i = 1, #ARGV, 4 do
  local ts = tonumber(ARGV[i])
  if ts > max_ts then max_ts = ts end
  nxt = nxt + 1
  redis.call('XADD', KEYS[1], '0-' .. nxt, 't', ARGV[i], 'm', max_ts,
             'k', ARGV[i + 1], 'h', ARGV[i + 2], 'v', ARGV[i + 3])
end
redis.call('HSET', KEYS[2], 'next', nxt, 'max_ts', string.format('%d', max_ts))
return first
"""


def _stream(tp: TopicPartition) -> str:
    return f"ll:{{{tp.topic}/{tp.partition}}}"


def _offset(entry_id: bytes) -> int:
    return int(entry_id.split(b"-")[1]) - 1


def _record(tp: TopicPartition, entry_id: bytes, fields: dict[bytes, bytes]) -> Record:
    key = fields[b"k"] if fields[b"h"] == b"1" else None
    return Record(tp.topic, tp.partition, _offset(entry_id), int(fields[b"t"]), key, fields[b"v"])


class RedisLog:
    """An event log on Redis Streams.

    Args:
        url: ``redis://host:port/db``.
        timeout_s: Deadline for connecting and for each command; an unreachable server
            raises :class:`BackendUnavailableError` naming the address.
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = masked(url)  # for messages: the password stays out of them
        self.timeout_s = timeout_s
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._append = self._redis.register_script(_APPEND)
        self._partitions: dict[str, int] = {}
        self._round_robin: dict[str, int] = {}
        self._call(self._redis.ping)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise BackendUnavailableError(
                f"Redis at {self.url} did not answer within {self.timeout_s:g}s ({exc}). "
                "Check that redis-server runs and that the address is right."
            ) from None

    def create_topic(self, topic: str, *, partitions: int = 1) -> None:
        check_topic(topic, partitions=partitions)
        self._call(self._redis.hsetnx, _TOPICS, topic, partitions)
        existing = self.partitions(topic)
        check_same_layout(topic, self.url, existing, partitions)

    def partitions(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            raw = self._call(self._redis.hget, _TOPICS, topic)
            if raw is None:
                raise topic_not_found(topic, self.url)
            count = self._partitions[topic] = int(raw)
        return count

    def _check(self, tp: TopicPartition) -> None:
        partitions = self.partitions(tp.topic)
        check_partition(tp.topic, tp.partition, partitions)

    def append_many(self, topic: str, messages: Sequence[Message]) -> list[tuple[int, int]]:
        partitions = self.partitions(topic)
        start = self._round_robin.get(topic, 0)
        self._round_robin[topic] = start + len(messages)
        by_partition: dict[int, list[int]] = {}
        for i, m in enumerate(messages):
            p = partition_for(m.key, partitions) if m.key is not None else (start + i) % partitions
            by_partition.setdefault(p, []).append(i)
        now = time.time_ns() // 1_000_000
        pipe = self._redis.pipeline(transaction=False)
        for p, indices in by_partition.items():
            args: list[Any] = []
            for i in indices:
                m = messages[i]
                has_key = m.key is not None
                args += [
                    now if m.timestamp_ms is None else m.timestamp_ms,
                    m.key if has_key else b"",
                    b"1" if has_key else b"0",
                    m.value,
                ]
            tp = TopicPartition(topic, p)
            self._append(keys=[_stream(tp), _stream(tp) + ":meta"], args=args, client=pipe)
        firsts = self._call(pipe.execute)
        positions: list[tuple[int, int]] = [(0, 0)] * len(messages)
        for (p, indices), first in zip(by_partition.items(), firsts, strict=True):
            for n, i in enumerate(indices):
                positions[i] = (p, int(first) + n)
        return positions

    def read(self, tp: TopicPartition, offset: int, *, max_records: int = 1000) -> list[Record]:
        self._check(tp)
        entries = self._call(self._redis.xrange, _stream(tp), f"0-{offset + 1}", "+", max_records)
        return [_record(tp, entry_id, fields) for entry_id, fields in entries]

    def end_offset(self, tp: TopicPartition) -> int:
        self._check(tp)
        return int(self._call(self._redis.hget, _stream(tp) + ":meta", "next") or 0)

    def offset_for_time(self, tp: TopicPartition, timestamp_ms: int) -> int:
        lo, hi = 0, self.end_offset(tp)
        stream = _stream(tp)
        while lo < hi:  # first offset whose running-max timestamp reaches timestamp_ms
            mid = (lo + hi) // 2
            # the first entry at or after mid: erasure and retention leave gaps
            found = self._call(self._redis.xrange, stream, f"0-{mid + 1}", "+", 1)
            older = bool(found) and int(found[0][1][b"m"]) < timestamp_ms
            lo, hi = (mid + 1, hi) if older else (lo, mid)
        return lo

    def erase(self, matches: Callable[[Record], bool], *, topics: Sequence[str] = ()) -> int:
        """Delete the records of ``topics`` (all when empty) that ``matches`` (``XDEL``);
        return how many. Offsets stay: the next one is kept in the stream's metadata.
        Redis's own persistence (RDB, AOF) holds the deleted entries until its next
        rewrite (``BGREWRITEAOF``): see docs/privacy.md."""
        erased = 0
        for tp in self._partitions_of(topics):
            offset = 0
            while batch := self.read(tp, offset, max_records=5000):
                ids = [f"0-{r.offset + 1}" for r in batch if matches(r)]
                if ids:
                    erased += int(self._call(self._redis.xdel, _stream(tp), *ids))
                offset = batch[-1].offset + 1
        return erased

    def expire(self, older_than_ms: int, *, topics: Sequence[str] = (), limit: int = 10_000) -> int:
        """Delete up to ``limit`` records older than ``older_than_ms`` by the running
        maximum of record times (``XTRIM MINID``: always a prefix); return how many."""
        expired = 0
        for tp in self._partitions_of(topics):
            if expired >= limit:
                break
            cutoff = self.offset_for_time(tp, older_than_ms)
            old = [r.offset for r in self.read(tp, 0, max_records=limit - expired)]
            old = [o for o in old if o < cutoff]
            if old:
                minid = f"0-{old[-1] + 2}"  # entries below the id of the offset after
                expired += int(self._call(self._redis.xtrim, _stream(tp), minid=minid))
        return expired

    def _partitions_of(self, topics: Sequence[str]) -> list[TopicPartition]:
        names = list(topics) or sorted(t.decode() for t in self._call(self._redis.hkeys, _TOPICS))
        return [TopicPartition(t, p) for t in names for p in range(self.partitions(t))]

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        offset_reset: OffsetReset = "earliest",
        session_timeout_s: float = 10.0,
    ) -> Consumer:
        if session_timeout_s <= 0:
            raise ConfigError(f"'session_timeout_s' must be > 0. Got {session_timeout_s!r}.")
        partitions = [
            TopicPartition(t, p) for t in sorted(set(topics)) for p in range(self.partitions(t))
        ]
        return RedisConsumer(
            self, group, partitions, offset_reset=offset_reset, session_timeout_s=session_timeout_s
        )

    def close(self) -> None:
        self._redis.close()


class RedisConsumer:
    """A consumer-group member on Redis Streams (see the module docs)."""

    def __init__(
        self,
        log: RedisLog,
        group: str,
        partitions: list[TopicPartition],
        *,
        offset_reset: OffsetReset,
        session_timeout_s: float,
    ) -> None:
        self._log = log
        self._redis = log._redis
        self.group = group
        self.member = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._partitions = partitions
        self._members_key = f"ll:group:{group}:members"
        self._session_ms = int(session_timeout_s * 1000)
        self._last_heartbeat_ms = 0
        self._members: list[str] = []
        # Per owned partition, the cursor for XREADGROUP: an ID while re-reading this
        # member's pending entries, ">" once they are all delivered.
        self._cursors: dict[TopicPartition, str] = {}
        self._unacked: dict[TopicPartition, list[bytes]] = {}
        start = "0" if offset_reset == "earliest" else "$"
        for tp in partitions:
            try:
                log._call(self._redis.xgroup_create, _stream(tp), group, id=start, mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _heartbeat(self) -> None:
        now = time.time_ns() // 1_000_000
        if now - self._last_heartbeat_ms > self._session_ms // 5 or not self._members:
            pipe = self._redis.pipeline(transaction=False)
            pipe.zadd(self._members_key, {self.member: now})
            pipe.zremrangebyscore(self._members_key, 0, now - self._session_ms)
            pipe.zrange(self._members_key, 0, -1)
            self._members = [m.decode() for m in self._log._call(pipe.execute)[2]]
            self._last_heartbeat_ms = now

    def _rebalance(self) -> None:
        self._heartbeat()
        owned = assign_round_robin(self._partitions, self._members, self.member)
        for tp in list(self._cursors):
            if tp not in owned:
                del self._cursors[tp]
                self._unacked.pop(tp, None)
        for tp in owned:
            if tp not in self._cursors:
                self._take_over(tp)

    def _take_over(self, tp: TopicPartition) -> None:
        """Claim every entry others read but never acknowledged, then re-read them in order."""
        cursor = "0-0"
        while True:
            cursor = self._log._call(
                self._redis.xautoclaim,
                _stream(tp),
                self.group,
                self.member,
                min_idle_time=0,
                start_id=cursor,
                count=1000,
            )[0]
            if cursor in (b"0-0", "0-0"):
                break
        self._cursors[tp] = "0-0"
        self._unacked[tp] = []

    def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        deadline = time.monotonic() + timeout_s
        while True:
            self._rebalance()
            records = self._fetch(max_records, max(0.0, min(0.1, deadline - time.monotonic())))
            if records or time.monotonic() >= deadline:
                return records

    def _fetch(self, max_records: int, block_s: float) -> list[Record]:
        if not self._cursors:
            time.sleep(block_s)
            return []
        streams = {_stream(tp): cursor for tp, cursor in self._cursors.items()}
        by_stream = {_stream(tp): tp for tp in self._cursors}
        pending_phase = any(c != ">" for c in streams.values())
        reply = self._log._call(
            self._redis.xreadgroup,
            self.group,
            self.member,
            streams,
            count=max(1, max_records // len(streams)),
            block=None if pending_phase else max(1, int(block_s * 1000)),
        )
        out: list[Record] = []
        for name, entries in reply or []:
            tp = by_stream[name.decode()]
            if self._cursors[tp] != ">" and not entries:
                self._cursors[tp] = ">"  # this member's pending entries are all delivered
                continue
            for entry_id, fields in entries:
                out.append(_record(tp, entry_id, fields))
                self._unacked[tp].append(entry_id)
            if self._cursors[tp] != ">":
                self._cursors[tp] = entries[-1][0].decode()
        return out

    def commit(self) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for tp, ids in self._unacked.items():
            if ids:
                pipe.xack(_stream(tp), self.group, *ids)
        self._log._call(pipe.execute)
        for ids in self._unacked.values():
            ids.clear()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._cursors:
            raise EventLogError(
                f"Cannot seek {tp.topic}[{tp.partition}]: member {self.member} of group "
                f"{self.group!r} does not own it. Poll first, and seek within assignment()."
            )
        self.commit()
        self._log._call(self._redis.xgroup_setid, _stream(tp), self.group, f"0-{offset}")
        self._cursors[tp] = ">"

    def assignment(self) -> list[TopicPartition]:
        return sorted(self._cursors)

    def close(self) -> None:
        self._log._call(self._redis.zrem, self._members_key, self.member)
