"""The paged KV cache's bookkeeping: fixed-size blocks, each sequence's block table, a
free list, reference counts, and prefix caching.

The cache's tensors hold ``num_blocks * block_size`` token slots a layer
(:class:`loopline.llm.engine.decoder.PagedDecoder`); this module only decides which
slots a sequence's tokens go to. A sequence's position ``p`` lives in slot
``table[p // block_size] * block_size + p % block_size``.

**Prefix caching.** A full block is named by a hash of its tokens chained to its
predecessor's (so equal names mean equal prefixes); a table's first block is chained to
the table's ``root``, empty for the base model and a LoRA adapter's digest otherwise
(the adapter changes the keys and values, so its blocks are its own). A new sequence
whose first blocks' names are cached shares those blocks (reference counted) instead
of computing them. A block whose last user left goes to the back of the free list but
keeps its name: it is taken again, LRU, only when the free list reaches it, and until
then a new sequence with that prefix can revive it.

**Copy on write.** Full blocks are never written again, so sharing them is safe. A
forked sequence (parallel samples of one prompt) also shares its parent's partly
filled last block: the first of them to append to it gets a private copy
(:meth:`BlockManager.writable`), the copy of the slots made by the caller's cache.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


class OutOfBlocksError(RuntimeError):
    """No free block is left: the scheduler preempts a sequence and tries again."""


def block_hash(parent: bytes, tokens: Sequence[int]) -> bytes:
    """The name of a full block: its tokens chained to its predecessor's name."""
    data = parent + np.asarray(tokens, dtype=np.int64).tobytes()
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass
class BlockTable:
    """One sequence's blocks, in order, the names of its full ones, and the root its
    chain of names starts from (see the module)."""

    blocks: list[int] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)  # of blocks[: len(hashes)]
    root: bytes = b""


@dataclass
class CacheStats:
    """Prefix-cache accounting since the start: prompt tokens admitted, and of those
    found in the cache (kept by the scheduler)."""

    queried: int = 0
    hits: int = 0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queried if self.queried else 0.0


class BlockManager:
    """Blocks of ``block_size`` token slots, ``num_blocks`` of them (see the module)."""

    def __init__(self, num_blocks: int, block_size: int, *, prefix_caching: bool = True) -> None:
        if num_blocks < 1 or block_size < 1:
            raise ValueError("num_blocks and block_size must be >= 1.")
        self.num_blocks, self.block_size = num_blocks, block_size
        self.prefix_caching = prefix_caching
        self.refs = [0] * num_blocks
        self.name: list[bytes | None] = [None] * num_blocks
        self.free: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))  # LRU first
        self.cached: dict[bytes, int] = {}  # name -> block
        self.stats = CacheStats()

    # --- accounting -------------------------------------------------------------------

    @property
    def num_free(self) -> int:
        """Blocks no sequence holds (cached ones included: they can be taken)."""
        return len(self.free)

    @property
    def usage(self) -> float:
        """The share of blocks some sequence holds."""
        return 1 - len(self.free) / self.num_blocks

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    # --- allocation -------------------------------------------------------------------

    def _take(self) -> int:
        if not self.free:
            raise OutOfBlocksError("no free KV-cache block")
        block, _ = self.free.popitem(last=False)
        old = self.name[block]
        if old is not None:  # evicted: its prefix is no longer cached
            self.name[block] = None
            if self.cached.get(old) == block:
                del self.cached[old]
        self.refs[block] = 1
        return block

    def _hold(self, block: int) -> None:
        if self.refs[block] == 0:
            del self.free[block]
        self.refs[block] += 1

    def lookup(self, table: BlockTable, prompt: Sequence[int]) -> int:
        """Share the cached blocks that begin ``prompt`` (an empty table's first), and
        return how many of its tokens they hold. At least the prompt's last token is
        left to compute: its logits give the first output token."""
        assert not table.blocks
        n = 0
        if self.prefix_caching:
            parent = table.root
            for start in range(0, len(prompt) - self.block_size, self.block_size):
                name = block_hash(parent, prompt[start : start + self.block_size])
                block = self.cached.get(name)
                if block is None:
                    break
                self._hold(block)
                table.blocks.append(block)
                table.hashes.append(name)
                parent, n = name, n + self.block_size
        return n

    def can_grow(self, table: BlockTable, tokens: int) -> bool:
        return self.blocks_for(tokens) - len(table.blocks) <= len(self.free)

    def grow(self, table: BlockTable, tokens: int) -> None:
        """Give ``table`` blocks enough for ``tokens`` tokens, or raise
        :class:`OutOfBlocksError` having taken none."""
        need = self.blocks_for(tokens) - len(table.blocks)
        if need > len(self.free):
            raise OutOfBlocksError(f"{need} blocks needed, {len(self.free)} free")
        for _ in range(need):
            table.blocks.append(self._take())

    def seal(self, table: BlockTable, tokens: Sequence[int], computed: int) -> None:
        """Name the table's blocks that ``computed`` tokens fill (their K/V written),
        so that later sequences can share them."""
        if not self.prefix_caching:
            return
        while (len(table.hashes) + 1) * self.block_size <= computed:
            i = len(table.hashes)
            parent = table.hashes[-1] if table.hashes else table.root
            name = block_hash(parent, tokens[i * self.block_size : (i + 1) * self.block_size])
            table.hashes.append(name)
            block = table.blocks[i]
            if name not in self.cached and self.name[block] is None:
                self.cached[name] = block
                self.name[block] = name

    def release(self, table: BlockTable) -> None:
        """Drop the table's blocks (last first, so that a prefix's tail is evicted
        before its head)."""
        for block in reversed(table.blocks):
            self.refs[block] -= 1
            if self.refs[block] == 0:
                self.free[block] = None
        table.blocks.clear()
        table.hashes.clear()

    # --- forks ------------------------------------------------------------------------

    def fork(self, table: BlockTable) -> BlockTable:
        """A second table sharing every block of ``table``."""
        for block in table.blocks:
            self._hold(block)
        return BlockTable(list(table.blocks), list(table.hashes), table.root)

    def writable(self, table: BlockTable, index: int) -> tuple[int, int] | None:
        """Make the table's block ``index`` its own before a write: when it is shared,
        take a new block in its place and return ``(source, copy)`` for the caller to
        copy the slots; None when it was its own already."""
        block = table.blocks[index]
        if self.refs[block] == 1:
            return None
        copy = self._take()
        self.refs[block] -= 1
        table.blocks[index] = copy
        return block, copy
