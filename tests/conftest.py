"""Real servers for the suite, started once per session on 127.0.0.1 and free ports; the
toy application's world and registry; the suite's own model-signing keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopline.registry import Registry
from loopline.servers import LocalServer, noida_broker, postgres_server, redis_server, tansu_broker
from tests.toyapp import World, train_version


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server from Debian's package (installed by `make test`)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server from Debian's package (installed by `make test`)."""
    with postgres_server(tmp_path_factory.mktemp("postgres")) as server:
        yield server.url


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A Kafka-protocol broker: noida-db, which persists and implements offsets-for-times.

    tansu (memory engine) is used by the benchmark; its high watermark and time index are
    not exact (see docs/decisions/0001-event-log.md), so the contract suite runs here.
    """
    with noida_broker(tmp_path_factory.mktemp("kafka")) as server:
        yield server


@pytest.fixture(scope="session")
def kafka_url(kafka_server: LocalServer) -> str:
    return kafka_server.url


@pytest.fixture(scope="session")
def tansu_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tansu broker: unlike noida-db 0.2.3 it evicts a group member whose process died.

    noida-db never rebalanced away a kill -9'd member's partitions (none after 40 s here),
    so the crash-redelivery test runs on tansu.
    """
    with tansu_broker(tmp_path_factory.mktemp("tansu")) as server:
        yield server.url


@pytest.fixture(scope="session", autouse=True)
def signing_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One key pair for the whole suite, in a temporary folder: every registry of a test
    signs with it and trusts it, and no test ever reads or writes a developer's keys
    (``$LOOPLINE_SIGNING_KEY``, ``.loopline/keys``). Tests of keys set their own."""
    from loopline.registry.signing import SIGNING_KEY_ENV, TRUSTED_KEYS_ENV, create_key

    folder = tmp_path_factory.mktemp("keys")
    create_key(folder / "signing.key")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(SIGNING_KEY_ENV, str(folder / "signing.key"))
        env.setenv(TRUSTED_KEYS_ENV, str(folder))
        yield folder


@pytest.fixture(scope="session")
def world() -> World:
    """The toy ranking application's simulated users and items (tests/toyapp.py)."""
    return World.make()


@pytest.fixture(scope="session")
def toy_registry(tmp_path_factory: pytest.TempPathFactory, world: World) -> Registry:
    """The toy ranker: version 1 (weak) the champion, version 2 (strong) the challenger."""
    registry = Registry(root=tmp_path_factory.mktemp("toy-registry"))
    train_version(world, registry, strong=False, alias="champion")
    train_version(world, registry, strong=True)
    return registry
