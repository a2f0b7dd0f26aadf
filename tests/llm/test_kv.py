"""The paged KV cache's bookkeeping: blocks, prefix sharing, LRU eviction, copy on
write."""

from __future__ import annotations

import pytest

from loopline.llm.engine.kv import BlockManager, BlockTable, OutOfBlocksError


def test_blocks_are_given_taken_back_and_refused_when_gone() -> None:
    m = BlockManager(4, 8)
    a = BlockTable()
    m.grow(a, 17)  # three blocks
    assert (len(a.blocks), m.num_free, m.usage) == (3, 1, 0.75)
    b = BlockTable()
    with pytest.raises(OutOfBlocksError):
        m.grow(b, 9)
    assert b.blocks == []  # none taken
    m.release(a)
    assert m.num_free == 4


def test_full_blocks_are_shared_by_prefix_and_evicted_lru() -> None:
    m = BlockManager(4, 4)
    tokens = list(range(10))
    a = BlockTable()
    m.grow(a, 10)
    m.seal(a, tokens, 10)  # two full blocks named
    assert len(a.hashes) == 2
    b = BlockTable()
    assert m.lookup(b, [*tokens[:8], 99, 98]) == 8  # shares both
    assert b.blocks == a.blocks[:2]
    for prompt, found in ((tokens[:8], 4), ([0, 1, 2, 3, 4, 4, 6, 7, 8], 4), ([1] * 9, 0)):
        table = BlockTable()  # the last token is always left to compute; block 1 differs
        assert m.lookup(table, prompt) == found
        m.release(table)
    m.release(b)
    m.release(a)
    # freed blocks keep their names until taken again, oldest first (a's tail first)
    revived = BlockTable()
    assert m.lookup(revived, tokens) == 8
    m.release(revived)
    c = BlockTable()
    m.grow(c, 16)  # takes every block: the names are gone
    m.release(c)
    assert m.lookup(BlockTable(), tokens) == 0


def test_a_fork_shares_blocks_and_copies_on_write() -> None:
    m = BlockManager(4, 4)
    a = BlockTable()
    m.grow(a, 6)
    b = m.fork(a)
    assert b.blocks == a.blocks
    assert m.num_free == 2
    source, copy = m.writable(b, 1) or (None, None)
    assert source == a.blocks[1]
    assert copy not in a.blocks
    assert b.blocks[1] == copy
    assert m.writable(b, 1) is None  # its own now
    assert m.writable(a, 1) is None  # a's again alone
    m.release(a)
    m.release(b)
    assert m.num_free == 4


def test_a_tables_root_keeps_its_names_apart_from_other_roots() -> None:
    m = BlockManager(8, 4)
    tokens = list(range(9))
    for root in (b"", b"lora"):  # the base model's blocks, and an adapter's
        table = BlockTable(root=root)
        m.grow(table, 9)
        m.seal(table, tokens, 9)
    base, adapted = BlockTable(), BlockTable(root=b"lora")
    assert m.lookup(base, tokens) == 8
    assert m.lookup(adapted, tokens) == 8
    assert set(base.blocks).isdisjoint(adapted.blocks)  # each found its own
    assert base.hashes != adapted.hashes
    assert m.lookup(BlockTable(root=b"other"), tokens) == 0
    assert m.fork(adapted).root == b"lora"
