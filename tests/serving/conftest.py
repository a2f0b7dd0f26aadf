"""A toy ranking application (tests/toyapp.py) served by the kernel: no fraud here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loopline.registry import Registry
from tests.toyapp import Toy, World, build


@pytest.fixture
def toy(tmp_path: Path, toy_registry: Registry, world: World) -> Iterator[Toy]:
    made = build(tmp_path, toy_registry, world)
    yield made
    made.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def client(toy: Toy) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=toy.service), base_url="http://t")
