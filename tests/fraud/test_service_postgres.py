"""The fraud service with its prediction log on a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.apps.fraud.service import ServeOptions, build
from loopline.registry import Registry
from loopline.serving import KeyRing

from .conftest import ADMIN, SCORE
from .test_service import client, score, tx


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.postgres
@pytest.mark.anyio
async def test_the_service_on_postgres(
    tmp_path: Path, fraud_registry: Registry, rules_file: Path, postgres_url: str
) -> None:
    KeyRing([SCORE, ADMIN]).save(tmp_path / "keys.json")
    svc = build(
        ServeOptions(
            state=tmp_path / "state",
            registry=fraud_registry.uri,
            rules=rules_file,
            keys=tmp_path / "keys.json",
            decisions=postgres_url,
        )
    )
    try:
        async with client(svc) as c:
            first = await score(c, tx(77))
            again = await score(c, tx(77))
        assert first.status_code == 200
        assert again.json()["replayed"] is True
        assert svc.log.find("t-77") is not None
    finally:
        svc.close()
