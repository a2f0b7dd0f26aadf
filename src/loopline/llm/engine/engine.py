"""The engine: a scheduler, a paged model and a sampler, stepped one forward pass at a
time. Sequences go in with :meth:`Engine.add`; each step's new tokens come out through
the sequence's ``emit`` callback (a stream's queue, in the server).

**Speculative decoding** (``speculate = k``): a greedy sequence's next ``k`` tokens are
guessed by prompt lookup (the latest earlier place in its own text where its last few
tokens occurred: what follows there) and checked in the same pass as its next token.
The longest agreeing run is kept, plus the model's own token after it, so greedy
output is the same as plain decoding's, in fewer passes when the text repeats itself.

**LoRA adapters** (:mod:`loopline.llm.engine.adapters`): :meth:`Engine.load_adapter`
names an adapter, and a sequence added with that name is served with it (others with
the base model, in the same passes). Each pass packs its sequences grouped by adapter,
so each adapter's rows are one run (:class:`~loopline.llm.engine.decoder.Batch`). An
adapter cannot be unloaded while a sequence uses it: a swap loads the new one under
another name, sends new requests there, and unloads the old one when
:meth:`Engine.adapter_in_use` turns false.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any, Literal

import torch

from loopline.llm.engine.adapters import AdapterInUseError, LoraAdapter, read_adapter
from loopline.llm.engine.decoder import Batch, PagedDecoder
from loopline.llm.engine.kv import BlockManager, BlockTable
from loopline.llm.engine.sampling import SamplingParams, sample
from loopline.llm.engine.scheduler import Scheduled, Scheduler
from loopline.llm.engine.sequence import Output, Sequence, Status

LOOKUP_NGRAM = (3, 2)  # the n-grams a draft is looked up by, longest first


class Engine:
    """Completes sequences on ``model`` (see the module).

    Args:
        model: The paged decoder; its cache's size sets the blocks.
        num_blocks: Blocks of the model's cache.
        eos: Token ids that end a sequence (unless its params ignore them).
        decode: Token ids to text, for stop strings (None: stop strings unsupported).
        speculate: Draft tokens checked a step for greedy sequences (0: off).
    """

    def __init__(
        self,
        model: PagedDecoder,
        *,
        num_blocks: int,
        eos: Iterable[int] = (),
        decode: Callable[[Seq[int]], str] | None = None,
        max_seqs: int = 32,
        max_batched_tokens: int = 512,
        max_waiting: int = 256,
        policy: Literal["continuous", "static"] = "continuous",
        prefix_caching: bool = True,
        speculate: int = 0,
    ) -> None:
        self.model = model
        self.blocks = BlockManager(num_blocks, model.block_size, prefix_caching=prefix_caching)
        self.scheduler = Scheduler(
            self.blocks, max_seqs=max_seqs, max_batched_tokens=max_batched_tokens,
            max_waiting=max_waiting, policy=policy,
        )  # fmt: skip
        self.eos = frozenset(eos)
        self.decode = decode
        self.speculate = speculate
        self.steps = 0
        self.drafted = self.accepted = 0  # speculative tokens proposed, and kept
        self._adapters: dict[str, LoraAdapter] = {}

    # --- requests ---------------------------------------------------------------------

    def add(
        self,
        prompt: Seq[int],
        params: SamplingParams,
        emit: Callable[[Output], Any] = lambda _: None,
        adapter: str | None = None,
    ) -> Sequence:
        """Queue a prompt, served with the loaded LoRA adapter ``adapter`` (None: the
        base model)."""
        if params.stop and self.decode is None:
            raise ValueError("stop strings need the engine's decode function")
        root = b"" if adapter is None else self._adapter(adapter).digest
        seq = Sequence(list(prompt), params, emit, adapter, table=BlockTable(root=root))
        if len(prompt) + params.max_tokens > self.model.spec.max_positions:
            raise ValueError(
                f"prompt ({len(prompt)} tokens) and max_tokens ({params.max_tokens}) exceed "
                f"the model's context of {self.model.spec.max_positions}"
            )
        self.scheduler.add(seq)
        return seq

    def generate(
        self, prompts: Iterable[Seq[int]], params: SamplingParams, adapter: str | None = None
    ) -> list[list[int]]:
        """Complete every prompt (blocking); their outputs in order."""
        seqs = [self.add(p, params, adapter=adapter) for p in prompts]
        while self.scheduler.busy:
            self.step()
        return [s.output for s in seqs]

    # --- adapters ---------------------------------------------------------------------

    @property
    def adapters(self) -> tuple[str, ...]:
        """The loaded LoRA adapters' names, in the order they were loaded."""
        return tuple(self._adapters)

    def load_adapter(self, name: str, source: Path | LoraAdapter) -> None:
        """Serve the PEFT LoRA adapter in folder ``source`` (or one read already by
        :func:`~loopline.llm.engine.adapters.read_adapter`, off the engine's thread) to
        the sequences added with ``name``.

        Raises:
            ValueError: ``name`` is taken (unload it first, or use another name), or
                the adapter is not supported (see ``read_adapter``).
        """
        if not name:
            raise ValueError("An adapter's name must not be empty.")
        if name in self._adapters:
            raise ValueError(f"An adapter named {name!r} is loaded already; unload it "
                             "first, or load the new one under another name.")  # fmt: skip
        if not isinstance(source, LoraAdapter):
            source = read_adapter(source, spec=self.model.spec, dtype=self.model.dtype)
        self._adapters[name] = source

    def unload_adapter(self, name: str) -> None:
        """Stop serving adapter ``name``; refused while a sequence uses it (see the
        module for a swap).

        Raises:
            ValueError: No adapter of that name is loaded.
            AdapterInUseError: A waiting or running sequence uses it.
        """
        self._adapter(name)
        if self.adapter_in_use(name):
            raise AdapterInUseError(f"Adapter {name!r} is in use by waiting or running "
                                    "sequences; unload it once adapter_in_use() is "
                                    "false.")  # fmt: skip
        del self._adapters[name]

    def adapter_in_use(self, name: str) -> bool:
        """Whether a waiting or running sequence is served with adapter ``name``. A
        cancelled one does not count: the next step drops it before any pass."""
        s = self.scheduler
        return any(q.adapter == name and not q.cancelled for q in (*s.waiting, *s.running))

    def _adapter(self, name: str) -> LoraAdapter:
        adapter = self._adapters.get(name)
        if adapter is None:
            raise ValueError(f"No adapter named {name!r} is loaded (loaded: "
                             f"{list(self._adapters)}); load it first.")  # fmt: skip
        return adapter

    # --- one step ---------------------------------------------------------------------

    def step(self) -> list[Scheduled]:
        """One forward pass over the scheduled sequences; their new tokens emitted."""
        work = self.scheduler.schedule()
        if not work:
            return work
        work.sort(key=lambda w: w.seq.adapter or "")  # one run of rows per adapter
        drafts = {w.seq.id: self._draft(w) for w in work}
        batch, reads = self._batch(work, drafts)
        logits = self.model(batch)
        self.steps += 1
        row = 0
        for w in work:
            seq, draft = w.seq, drafts[w.seq.id]
            seq.computed += w.count
            if seq.computed < seq.length:  # a prompt's chunk: nothing to sample yet
                self.blocks.seal(seq.table, seq.tokens, seq.computed)
                continue
            n = reads[seq.id]
            new = self._accept(seq, logits[row : row + n], draft)
            row += n
            seq.computed += len(new) - 1  # the accepted drafts' keys are in the cache
            self._append(seq, new)
        return work

    def _draft(self, w: Scheduled) -> list[int]:
        """Prompt-lookup drafts for a greedy sequence that is decoding."""
        seq = w.seq
        if not self.speculate or not seq.params.greedy or w.count != 1 or seq.pending != 1:
            return []
        room = min(
            self.speculate,
            seq.params.max_tokens - seq.generated - 1,
            self.model.spec.max_positions - seq.length - 1,
        )
        if room <= 0 or not self.blocks.can_grow(seq.table, seq.length + room):
            return []
        tokens = seq.tokens
        for n in LOOKUP_NGRAM:
            if len(tokens) <= n:
                continue
            tail = tokens[-n:]
            for start in range(len(tokens) - n - 1, -1, -1):
                if tokens[start : start + n] == tail:
                    found = tokens[start + n : start + n + room]
                    if found:
                        self.blocks.grow(seq.table, seq.length + len(found))
                        return found
        return []

    def _batch(
        self, work: list[Scheduled], drafts: dict[int, list[int]]
    ) -> tuple[Batch, dict[int, int]]:
        """The packed forward pass, and how many logits rows each sampling sequence
        reads."""
        bs = self.model.block_size
        tokens: list[int] = []
        positions: list[int] = []
        spans: list[tuple[int, int]] = []
        keys: list[torch.Tensor] = []
        logits_at: list[int] = []
        reads: dict[int, int] = {}
        for w in work:
            seq = w.seq
            draft = drafts[seq.id]
            first = seq.computed
            new = seq.tokens[first : first + w.count] + draft
            start = len(tokens)
            tokens += new
            positions += range(first, first + len(new))
            spans.append((start, len(new)))
            end = first + len(new)
            table = torch.tensor(seq.table.blocks, dtype=torch.long)
            pos = torch.arange(end)
            keys.append(table[pos // bs] * bs + pos % bs)
            if first + w.count == seq.length:  # reaches the end: sample after it
                n = 1 + len(draft)
                logits_at += range(start + len(new) - n, start + len(new))
                reads[seq.id] = n
        pos_t = torch.tensor(positions, dtype=torch.long)
        slots = torch.cat([k[-n:] for k, (_, n) in zip(keys, spans, strict=True)])
        batch = Batch(
            tokens=torch.tensor(tokens, dtype=torch.long),
            positions=pos_t,
            slots=slots,
            spans=spans,
            keys=keys,
            logits_at=torch.tensor(logits_at, dtype=torch.long),
            adapters=self._runs(work, spans),
        )
        return batch, reads

    def _runs(
        self, work: list[Scheduled], spans: list[tuple[int, int]]
    ) -> list[tuple[slice, LoraAdapter]]:
        """Each adapter's run of packed rows (the work is sorted by adapter)."""
        runs = []
        pairs = zip(work, spans, strict=True)
        for name, group in itertools.groupby(pairs, key=lambda pair: pair[0].seq.adapter):
            if name is not None:
                members = [span for _, span in group]
                (first, _), (last, count) = members[0], members[-1]
                runs.append((slice(first, last + count), self._adapters[name]))
        return runs

    def _accept(self, seq: Sequence, logits: torch.Tensor, draft: list[int]) -> list[int]:
        """The tokens this pass adds: sampled (one), or the drafts the model agrees
        with and its own next token."""
        if not draft:
            return [sample(logits[0], seq.params, seq.generator)]
        picks = logits.argmax(dim=-1).tolist()
        kept = 0
        while kept < len(draft) and picks[kept] == draft[kept]:
            kept += 1
        self.drafted += len(draft)
        self.accepted += kept
        return [*draft[:kept], picks[kept]]

    def _append(self, seq: Sequence, new: list[int]) -> None:
        """Add sampled tokens, stopping at an end token, the length limit or a stop
        string; emit them."""
        if seq.first_token_at is None:
            seq.first_token_at = time.perf_counter()
        p = seq.params
        reason = None
        taken: list[int] = []
        for token in new:
            taken.append(token)
            if token in self.eos and not p.ignore_eos:
                reason = "stop"
                break
            if seq.generated + len(taken) >= p.max_tokens:
                reason = "length"
                break
        seq.tokens += taken
        seq.computed = min(seq.computed, seq.length)  # a draft cut at the end or the limit
        self.blocks.seal(seq.table, seq.tokens, seq.computed)
        if reason is None and p.stop and self._stopped(seq):
            reason = "stop"
        if reason is None:
            seq.emit(Output(tuple(taken)))
            return
        seq.emit(Output(tuple(taken)))
        seq.finished_at = time.perf_counter()
        self.scheduler.finish(seq, reason)

    def _stopped(self, seq: Sequence) -> bool:
        assert self.decode is not None
        longest = max(len(s) for s in seq.params.stop)
        tail = self.decode(seq.output[-(longest + 8) :])
        return any(s in tail for s in seq.params.stop)

    @property
    def idle(self) -> bool:
        return not self.scheduler.busy

    def stats(self) -> dict[str, float]:
        s = self.scheduler
        return {
            "waiting": len(s.waiting),
            "running": sum(1 for q in s.running if q.status is Status.RUNNING),
            "kv_cache_usage": self.blocks.usage,
            "prefix_hit_rate": self.blocks.stats.hit_rate,
            "preemptions": s.preemptions,
            "steps": self.steps,
            "speculative_acceptance": self.accepted / self.drafted if self.drafted else 0.0,
        }
