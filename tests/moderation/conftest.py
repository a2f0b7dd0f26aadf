"""A cascade trained once for the moderation tests: a tiny training set (3 texts per
language and label, 2 drawn into images, 1 spoken), since these tests check the service's
behaviour, not quality (the benchmark measures that)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.apps.moderation import pipeline
from loopline.apps.moderation.cascade import Readers
from loopline.registry import Registry


@pytest.fixture(scope="session")
def readers() -> Readers:
    """The heavy models, loaded once for the session."""
    return Readers()


@pytest.fixture(scope="session")
def built(readers: Readers) -> pipeline.Built:
    config = pipeline.TrainConfig(per_cell=3, images=3, speech=1)
    return pipeline.build(config, readers=readers, say=lambda _: None)


@pytest.fixture(scope="session")
def registry_uri(built: pipeline.Built, tmp_path_factory: pytest.TempPathFactory) -> str:
    root: Path = tmp_path_factory.mktemp("moderation-registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = Registry(uri)
    version = pipeline.register(registry, built)
    registry.promote(pipeline.MODEL, version, trigger="test", why="the tests' cascade")
    return uri
