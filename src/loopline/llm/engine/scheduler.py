"""Which sequences go into the next forward pass, and how many of their tokens.

**Continuous batching** (the default): every step, each running sequence gets its next
token (or its prompt's next chunk), and waiting ones join as soon as there is room, up
to ``max_batched_tokens`` new tokens and ``max_seqs`` sequences a step. A long prompt is
prefilled in chunks over several steps (**chunked prefill**), so it never stalls the
others' decoding for long. **Static batching** (the benchmark's baseline, same engine):
a batch is admitted only when the last one has wholly finished.

When a running sequence needs a block and none is free, the sequence admitted last is
**preempted**: its blocks are released and it goes back to the front of the queue, to
be recomputed (its prompt and output so far prefilled again; the prefix cache often
still holds much of it). The waiting queue is bounded: :meth:`Scheduler.add` refuses a
sequence when it is full (**back-pressure**, a 429 at the API).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from loopline.llm.engine.kv import BlockManager
from loopline.llm.engine.sequence import Output, Sequence, Status


class QueueFullError(RuntimeError):
    """The waiting queue is full: try again later."""


@dataclass(frozen=True)
class Scheduled:
    """A sequence's share of one forward pass: ``count`` tokens from ``computed``."""

    seq: Sequence
    count: int


class Scheduler:
    def __init__(
        self,
        blocks: BlockManager,
        *,
        max_seqs: int = 32,
        max_batched_tokens: int = 512,
        max_waiting: int = 256,
        policy: Literal["continuous", "static"] = "continuous",
        watermark: float = 0.01,
    ) -> None:
        self.blocks = blocks
        self.max_seqs, self.max_batched_tokens = max_seqs, max_batched_tokens
        self.max_waiting, self.policy = max_waiting, policy
        self.watermark = max(1, int(watermark * blocks.num_blocks))  # kept for growth
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.preemptions = 0

    def add(self, seq: Sequence) -> None:
        if len(self.waiting) >= self.max_waiting:
            raise QueueFullError(f"{len(self.waiting)} requests are waiting already")
        if self.blocks.blocks_for(len(seq.prompt) + seq.params.max_tokens) > (
            self.blocks.num_blocks - self.watermark
        ):
            raise ValueError(
                f"prompt ({len(seq.prompt)} tokens) and max_tokens ({seq.params.max_tokens}) "
                "exceed the KV cache"
            )
        self.waiting.append(seq)

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.running)

    def drop_cancelled(self) -> None:
        for seq in [*self.waiting, *self.running]:
            if seq.cancelled and seq.status is not Status.FINISHED:
                self.finish(seq, "cancelled")

    def finish(self, seq: Sequence, reason: str) -> None:
        seq.status, seq.finish_reason = Status.FINISHED, reason
        self.blocks.release(seq.table)
        if seq in self.running:
            self.running.remove(seq)
        elif seq in self.waiting:
            self.waiting.remove(seq)
        seq.emit(Output((), reason))

    def schedule(self) -> list[Scheduled]:
        """The next pass's work (see the module)."""
        self.drop_cancelled()
        out: list[Scheduled] = []
        budget, preempted = self._continue(out)
        if not preempted and not (self.policy == "static" and self.running):
            self._admit(out, budget)
        return out

    def _continue(self, out: list[Scheduled]) -> tuple[int, bool]:
        """The running sequences' next tokens, preempting the latest admitted where
        blocks run out; the token budget left, and whether any was preempted."""
        budget = self.max_batched_tokens
        preempted = False
        for seq in list(self.running):
            if seq.status is not Status.RUNNING or budget == 0:
                continue
            count = min(seq.pending, budget)
            while not self.blocks.can_grow(seq.table, seq.computed + count):
                victim = self.running[-1]
                self._preempt(victim)
                preempted = True
                if victim is seq:
                    break
            if seq.status is Status.RUNNING:
                self.blocks.grow(seq.table, seq.computed + count)
                out.append(Scheduled(seq, count))
                budget -= count
        return budget, preempted

    def _admit(self, out: list[Scheduled], budget: int) -> None:
        """Waiting sequences, first come first served, while there is room (static
        batching: a whole batch, prefilled as the budget allows)."""
        static = self.policy == "static"
        while self.waiting and (budget > 0 or static) and len(self.running) < self.max_seqs:
            seq = self.waiting[0]
            seq.computed = self.blocks.lookup(seq.table, seq.tokens)
            count = min(seq.pending, budget)
            need = self.blocks.blocks_for(seq.computed + count) - len(seq.table.blocks)
            if need + self.watermark > self.blocks.num_free:
                self.blocks.release(seq.table)  # the cached blocks it found wait unheld
                seq.computed = 0
                return
            self.blocks.grow(seq.table, seq.computed + count)
            if not seq.preemptions:
                seq.cached = seq.computed
                self.blocks.stats.queried += len(seq.prompt)
                self.blocks.stats.hits += seq.computed
            self.waiting.popleft()
            seq.status = Status.RUNNING
            self.running.append(seq)
            if count:
                out.append(Scheduled(seq, count))
            budget -= count

    def _preempt(self, seq: Sequence) -> None:
        """Release its blocks; it waits at the front, to be recomputed."""
        self.blocks.release(seq.table)
        seq.computed = 0
        seq.status = Status.WAITING
        seq.preemptions += 1
        self.preemptions += 1
        self.running.remove(seq)
        self.waiting.appendleft(seq)
