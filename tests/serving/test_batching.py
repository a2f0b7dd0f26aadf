"""Dynamic batching: in line on the event loop, or (a scorer that only reads a remote
store) on a thread of its own, one batch at a time, while the loop goes on."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from loopline.apps.fraud.service import ServeOptions, build
from loopline.registry import Registry
from loopline.serving import KeyRing
from loopline.serving.api import decode_request
from loopline.serving.batching import Batcher
from loopline.serving.scorer import Scorer

from .conftest import ADMIN, SCORE
from .test_service import client, score, tx


class SlowScorer:
    """Stands in for a scorer whose reads wait on a slow store: each batch takes 50 ms."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()

    def decide_many(self, requests: list[str], trace_ids: list[str]) -> list[str]:
        self.threads.add(threading.current_thread().name)
        time.sleep(0.05)
        self.batches.append(list(requests))
        if "boom" in requests:
            raise RuntimeError("the store failed")
        return [f"decided {r}" for r in requests]


def test_an_offloaded_batch_leaves_the_loop_free_and_the_next_batch_forms_meanwhile() -> None:
    scorer = SlowScorer()
    batcher = Batcher(cast(Scorer, scorer), offload=True)

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
        first = asyncio.create_task(batcher.decide(cast(Any, "a"), "t-a"))
        await asyncio.sleep(0.01)  # "a" is being decided on the thread
        rest = [batcher.decide(cast(Any, r), f"t-{r}") for r in ("b", "c", "boom")]
        got = await asyncio.gather(first, *rest, return_exceptions=True)
        after = await batcher.decide(cast(Any, "d"), "t-d")  # a failed batch stops nothing
        tick.cancel()
        return [*got, after], max(gaps)

    got, longest_gap = asyncio.run(run())
    batcher.close()
    assert got[0] == "decided a"
    assert all(isinstance(g, RuntimeError) for g in got[1:4]), "one batch, one error for all"
    assert got[4] == "decided d"
    assert scorer.batches == [["a"], ["b", "c", "boom"], ["d"]]
    assert longest_gap < 0.03, "the loop ran while batches of 50 ms were decided"
    assert scorer.threads == {"decide_0"}


@pytest.mark.redis
@pytest.mark.anyio
async def test_a_read_only_scorer_on_redis_decides_off_the_loop_as_it_would_in_line(
    tmp_path: Path, fraud_registry: Registry, rules_file: Path, redis_url: str
) -> None:
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/6"
    redis.Redis.from_url(url).flushdb()
    KeyRing([SCORE, ADMIN]).save(tmp_path / "keys.json")
    options = ServeOptions(
        state=tmp_path / "state", registry=fraud_registry.uri, rules=rules_file,
        keys=tmp_path / "keys.json", features=url, watch_s=0,
    )  # fmt: skip
    writer = build(options)  # learns: the history of the cards into Redis
    assert not writer.scorer.only_reads_remote
    async with client(writer) as c:
        for i in range(40):
            assert (await score(c, tx(i))).status_code == 200
    writer.scorer.flush()
    writer.log.close()

    reader = build(replace(options, state=tmp_path / "reader", learn=False))
    assert reader.scorer.only_reads_remote
    bodies = [tx(100 + i) for i in range(12)]
    async with client(reader) as c:
        answers = await asyncio.gather(*(score(c, b) for b in bodies))
    assert [a.status_code for a in answers] == [200] * 12
    assert reader.batcher.batches < 12, "requests of one turn are decided together"
    in_line = reader.scorer.decide_many(
        [decode_request(json.dumps(b).encode()) for b in bodies], ["x"] * 12
    )
    assert [a.json()["score"] for a in answers] == [d.response.score for d in in_line]
    assert min(d.features["card__count_1d"] for d in in_line) > 0, "read from Redis"
    reader.log.close()
    reader.scorer.engine.store.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
