"""A toy ranking application (tests/toyapp.py) served by the kernel: no fraud here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loopline.registry import Registry
from tests.toyapp import Toy, World, build, train_version


@pytest.fixture(scope="session")
def world() -> World:
    return World.make()


@pytest.fixture(scope="session")
def toy_registry(tmp_path_factory: pytest.TempPathFactory, world: World) -> Registry:
    """Version 1 (weak) the champion, version 2 (strong) the challenger."""
    registry = Registry(root=tmp_path_factory.mktemp("toy-registry"))
    train_version(world, registry, strong=False, alias="champion")
    train_version(world, registry, strong=True)
    return registry


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
