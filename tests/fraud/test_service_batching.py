"""A fraud scorer that only reads a remote store (Redis) decides batches on a thread of
its own, as it would in line."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest

from loopline.apps.fraud.api import ScoreRequest
from loopline.apps.fraud.service import ServeOptions, build
from loopline.registry import Registry
from loopline.serving import KeyRing

from .conftest import ADMIN, SCORE
from .test_service import client, score, tx


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
    assert not writer.pipeline.tabular.only_reads_remote
    async with client(writer) as c:
        for i in range(40):
            assert (await score(c, tx(i))).status_code == 200
    writer.close()

    reader = build(replace(options, state=tmp_path / "reader", learn=False))
    assert reader.pipeline.tabular.only_reads_remote
    bodies = [tx(100 + i) for i in range(12)]
    async with client(reader) as c:
        answers = await asyncio.gather(*(score(c, b) for b in bodies))
    assert [a.status_code for a in answers] == [200] * 12
    assert reader.service.batcher("/v1/score").batches < 12, "one turn's requests together"
    in_line = reader.pipeline.predict_many(
        [msgspec.json.decode(msgspec.json.encode(b), type=ScoreRequest) for b in bodies],
        ["x"] * 12,
        reader.deployment.routing,
    )
    assert [a.json()["score"] for a in answers] == [d.response.score for d in in_line]
    assert min(d.inputs["card__count_1d"] for d in in_line) > 0, "read from Redis"
    reader.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
