"""A request as the engine holds it: its tokens, how many of them the KV cache holds,
its blocks, its sampling state, the LoRA adapter it is served with, and where its
output goes."""

from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopline.llm.engine.kv import BlockTable
from loopline.llm.engine.sampling import SamplingParams

_ids = itertools.count()


class Status(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(frozen=True)
class Output:
    """What one engine step made for a sequence: its new tokens (none when it ends
    without one), and why it ended (``stop``, ``length``, ``cancelled``, ``error``: the
    engine failed; None while it goes on)."""

    tokens: tuple[int, ...]
    finish_reason: str | None = None


@dataclass(eq=False)
class Sequence:
    """One prompt being completed. ``computed`` tokens have their keys and values in
    the cache; the rest (the prompt's unread part, or the last sampled token) go into
    the next forward pass. ``adapter`` names the engine's LoRA adapter it is served
    with (None: the base model)."""

    prompt: list[int]
    params: SamplingParams
    emit: Callable[[Output], Any] = lambda _: None
    adapter: str | None = None
    id: int = field(default_factory=lambda: next(_ids))
    tokens: list[int] = field(default_factory=list)  # the prompt, then the output
    table: BlockTable = field(default_factory=BlockTable)
    computed: int = 0
    cached: int = 0  # prompt tokens found in the prefix cache on admission
    status: Status = Status.WAITING
    finish_reason: str | None = None
    cancelled: bool = False
    preemptions: int = 0
    arrived: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    finished_at: float | None = None
    generator: Any = None

    def __post_init__(self) -> None:
        if not self.prompt:
            raise ValueError("a prompt needs at least one token")
        self.tokens = list(self.prompt)
        self.generator = self.params.generator()

    @property
    def output(self) -> list[int]:
        return self.tokens[len(self.prompt) :]

    @property
    def generated(self) -> int:
        return len(self.tokens) - len(self.prompt)

    @property
    def length(self) -> int:
        return len(self.tokens)

    @property
    def pending(self) -> int:
        """Tokens not yet in the cache."""
        return self.length - self.computed

    def cancel(self) -> None:
        """Ask the engine to drop it at its next step (the client went away)."""
        self.cancelled = True
