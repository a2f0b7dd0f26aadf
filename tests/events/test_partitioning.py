"""The partitioner is stable and the round-robin split is exact."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from loopline.events import TopicPartition, assign_round_robin, partition_for


def test_the_partition_of_a_key_is_the_same_in_another_process() -> None:
    keys = [f"card-{i}".encode() for i in range(50)]
    here = [partition_for(k, 12) for k in keys]
    code = (
        "from loopline.events import partition_for as p;"
        "print([p(f'card-{i}'.encode(), 12) for i in range(50)])"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == str(here)
    assert len(set(here)) > 6  # and it spreads keys


@given(
    partitions=st.integers(1, 40),
    members=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=10, unique=True),
)
def test_round_robin_gives_every_partition_to_exactly_one_member(
    partitions: int, members: list[str]
) -> None:
    tps = [TopicPartition("t", p) for p in range(partitions)]
    shares = [assign_round_robin(tps, members, m) for m in members]
    flat = [tp for share in shares for tp in share]
    assert sorted(flat) == sorted(tps)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert assign_round_robin(tps, members, "not-a-member") == []
