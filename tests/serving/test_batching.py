"""Dynamic batching: in line on the event loop; offloaded to a thread of its own, one
batch at a time, while the loop goes on; or, for a pipeline that awaits, batches as
tasks that overlap."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from loopline.registry import Registry
from loopline.serving.batching import Batcher
from tests.toyapp import SCORE_KEY, World, build

from .conftest import client


class SlowPipeline:
    """Stands in for a pipeline whose reads wait on a slow store: each batch takes 50 ms."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.routings: list[object] = []

    def predict_many(self, requests: list[str], trace_ids: list[str], routing: Any) -> list[str]:
        self.threads.add(threading.current_thread().name)
        self.routings.append(routing)
        time.sleep(0.05)
        self.batches.append(list(requests))
        if "boom" in requests:
            raise RuntimeError("the store failed")
        return [f"decided {r}" for r in requests]


def test_an_offloaded_batch_leaves_the_loop_free_and_the_next_batch_forms_meanwhile() -> None:
    pipeline = SlowPipeline()
    snapshots = iter(range(100))
    batcher = Batcher(pipeline, lambda: next(snapshots), offload=True)

    async def run() -> tuple[list[Any], float]:
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        first = asyncio.create_task(batcher.predict("a", "t-a"))
        await asyncio.sleep(0.01)  # "a" is being decided on the thread
        rest = [batcher.predict(r, f"t-{r}") for r in ("b", "c", "boom")]
        got = await asyncio.gather(first, *rest, return_exceptions=True)
        after = await batcher.predict("d", "t-d")  # a failed batch stops nothing
        tick.cancel()
        return [*got, after], max(gaps)

    got, longest_gap = asyncio.run(run())
    batcher.close()
    assert got[0] == "decided a"
    assert all(isinstance(g, RuntimeError) for g in got[1:4]), "one batch, one error for all"
    assert got[4] == "decided d"
    assert pipeline.batches == [["a"], ["b", "c", "boom"], ["d"]]
    assert pipeline.routings == [0, 1, 2], "one routing snapshot per batch"
    assert longest_gap < 0.03, "the loop ran while batches of 50 ms were decided"
    assert pipeline.threads == {"predict_0"}


@pytest.mark.anyio
async def test_an_awaiting_pipeline_overlaps_its_batches(
    tmp_path: Path, toy_registry: Registry, world: World
) -> None:
    from tests.toyapp import AsyncRankPipeline

    toy = build(tmp_path, toy_registry, world, asynchronous=True)
    rng = __import__("numpy").random.default_rng(0)
    async with client(toy) as c:

        async def one(i: int) -> int:
            await asyncio.sleep(0.003 * (i % 5))  # arrivals spread over several loop turns
            r = await c.post(
                "/v1/rank", json=world.request(i, rng), headers={"X-API-Key": SCORE_KEY}
            )
            return r.status_code

        codes = await asyncio.gather(*(one(i) for i in range(40)))
    assert codes == [200] * 40
    batcher = toy.service.batcher("/v1/rank")
    assert batcher.predicted == 40
    assert batcher.batches < 40, "requests of one turn go together"
    assert AsyncRankPipeline.most_in_flight >= 2, "a batch awaiting its model holds up none"
    assert toy.log.count() == 40
    toy.close()
