"""The event-log demo: produce transactions, consume them with a two-member group.

What it shows: keyed, partitioned, durable appends; a consumer group splitting the
partitions when a second member joins; at-least-once commits; invalid records sent to
the dead-letter topic with their reason instead of being dropped.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from loopline.apps.fraud.events import Transaction, random_transactions
from loopline.events import (
    Codec,
    DeadLetterQueue,
    EmbeddedLog,
    Message,
    TopicPartition,
    dead_letter_topic,
    decode_or_dead_letter,
)

TOPIC = "transactions"
GROUP = "fraud-scorer"
BAD_EVERY = 997  # a producer bug: every 997th record carries the amount as text


@dataclass
class Member:
    name: str
    consumed: int = 0
    partitions: set[int] = field(default_factory=set)
    positions: set[tuple[int, int]] = field(default_factory=set)


@dataclass
class IngestSummary:
    produced: int
    append_s: float
    consumed: int
    unique: int
    consume_s: float
    dead_letters: int
    example_reason: str
    members: list[Member]
    uncommitted: int

    @property
    def ok(self) -> bool:
        return self.unique + self.dead_letters == self.produced and self.uncommitted == 0


def _messages(transactions: list[Transaction]) -> list[Message]:
    codec = Codec(Transaction)
    out = []
    for i, tx in enumerate(transactions):
        raw = codec.encode(tx)
        if i % BAD_EVERY == BAD_EVERY - 1:
            raw = raw.replace(b'"amount":', b'"amount":"EUR ', 1).replace(
                b',"currency"', b'","currency"', 1
            )
        out.append(Message(raw, key=tx.card_token.encode(), timestamp_ms=tx.event_time_ms))
    return out


def _consume(
    log: EmbeddedLog, member: Member, done: threading.Event, progress: Progress, task: TaskID
) -> None:
    codec = Codec(Transaction)
    consumer = log.consumer(GROUP, [TOPIC], session_timeout_s=5)
    dlq = DeadLetterQueue(log, TOPIC)
    while not done.is_set():
        records = consumer.poll(max_records=2000, timeout_s=0.2)
        if not records:
            continue
        decoded = decode_or_dead_letter(records, codec, dlq)
        consumer.commit()
        member.consumed += len(decoded)
        member.partitions |= {r.partition for r in records}
        member.positions |= {(r.partition, r.offset) for r, _ in decoded}
        progress.advance(task, len(records))
    consumer.close()


def run_ingest_demo(
    workdir: Path,
    *,
    transactions: int = 200_000,
    partitions: int = 4,
    console: Console | None = None,
) -> IngestSummary:
    """Run the demo in ``workdir`` (recreated) and print what happened."""
    console = console or Console()
    shutil.rmtree(workdir, ignore_errors=True)
    log = EmbeddedLog(workdir / "events.db")
    log.create_topic(TOPIC, partitions=partitions)
    messages = _messages(random_transactions(transactions, seed=42))

    with Progress(console=console) as progress:
        task = progress.add_task("append (batches of 2,000)", total=len(messages))
        started = time.perf_counter()
        for i in range(0, len(messages), 2000):
            log.append_many(TOPIC, messages[i : i + 2000])
            progress.advance(task, len(messages[i : i + 2000]))
        append_s = time.perf_counter() - started

        task = progress.add_task("consume (group of 2)", total=len(messages))
        members = [Member("member-1"), Member("member-2")]
        done = threading.Event()
        threads = [
            threading.Thread(target=_consume, args=(log, m, done, progress, task)) for m in members
        ]
        started = time.perf_counter()
        threads[0].start()
        while members[0].consumed < len(messages) // 10:  # the second member joins later
            time.sleep(0.01)
        threads[1].start()
        while progress.tasks[task].completed < len(messages):
            time.sleep(0.01)
        consume_s = time.perf_counter() - started
        done.set()
        for t in threads:
            t.join()

    raw_letters = log.read(
        TopicPartition(dead_letter_topic(TOPIC), 0), 0, max_records=len(messages)
    )
    letters = {(d.partition, d.offset): d for d in map(DeadLetterQueue.parse, raw_letters)}
    check = log.consumer(GROUP, [TOPIC])
    uncommitted = len(check.poll(timeout_s=0.5))
    check.close()
    summary = IngestSummary(
        produced=len(messages),
        append_s=append_s,
        consumed=sum(m.consumed for m in members),
        unique=len(set().union(*(m.positions for m in members))),
        consume_s=consume_s,
        dead_letters=len(letters),
        example_reason=next(iter(letters.values())).reason if letters else "",
        members=members,
        uncommitted=uncommitted,
    )
    log.close()
    _print(console, summary, workdir)
    return summary


def _print(console: Console, s: IngestSummary, workdir: Path) -> None:
    table = Table(title="loopline event-log demo (embedded backend)")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("transactions produced", f"{s.produced:,}")
    table.add_row("append throughput", f"{s.produced / s.append_s:,.0f} events/s")
    table.add_row("decoded, distinct", f"{s.unique:,}")
    table.add_row("  redelivered in the rebalance (at-least-once)", f"{s.consumed - s.unique:,}")
    table.add_row("consume throughput (2 members)", f"{s.produced / s.consume_s:,.0f} events/s")
    for m in s.members:
        table.add_row(f"  {m.name}", f"{m.consumed:,} from partitions {sorted(m.partitions)}")
    table.add_row(f"dead letters ({TOPIC}.dlq), distinct", f"{s.dead_letters:,}")
    table.add_row("left uncommitted", f"{s.uncommitted:,}")
    table.add_row("every record decoded or dead-lettered", "yes" if s.ok else "NO")
    console.print(table)
    if s.example_reason:
        console.print(f"[bold]a dead letter's reason:[/bold] {s.example_reason}")
    counts = Counter(p for m in s.members for p in m.partitions)
    if any(c > 1 for c in counts.values()):
        console.print("partitions moved from member-1 to member-2 when it joined the group")
    console.print(f"log file: {workdir / 'events.db'}")
