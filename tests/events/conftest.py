"""One fixture, ``log``, parametrised over every event-log backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loopline.events import EventLog, open_log


@dataclass(frozen=True)
class Backend:
    name: str
    url: str
    session_timeout_s: float  # Kafka brokers refuse sessions under 6 s by default


@pytest.fixture(
    params=[
        pytest.param("embedded"),
        pytest.param("kafka", marks=pytest.mark.kafka),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "embedded":
        return Backend("embedded", f"file://{tmp_path / 'events.db'}", 1.0)
    if request.param == "kafka":
        return Backend("kafka", request.getfixturevalue("kafka_url"), 6.0)
    return Backend("redis", request.getfixturevalue("redis_url"), 1.0)


@pytest.fixture
def log(backend: Backend) -> Iterator[EventLog]:
    log = open_log(backend.url, timeout_s=10)
    yield log
    log.close()


@pytest.fixture
def topic() -> str:
    """A fresh topic name, so tests sharing a server never see each other's records."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def group() -> str:
    return f"g-{uuid.uuid4().hex[:12]}"
