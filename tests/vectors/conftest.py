"""The vector stores under test: the embedded folder, and a Milvus Lite server started once
per test module (``milvus`` marker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from loopline.servers import LocalServer, milvus_server
from loopline.vectors import EmbeddedVectors, VectorStore, open_vectors

BACKENDS = ["embedded", pytest.param("milvus", marks=pytest.mark.milvus)]


def pytest_configure(config: pytest.Config) -> None:
    # registered here as well as in pyproject, so that --strict-markers holds either way
    config.addinivalue_line("markers", "milvus: needs a Milvus Lite server (started by the tests)")


@pytest.fixture(scope="module")
def milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with milvus_server(tmp_path_factory.mktemp("milvus")) as server:
        yield server


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    """A fresh store of the parametrised backend (a Milvus store's collections are
    dropped afterwards, the server being shared by the module)."""
    if request.param == "embedded":
        yield EmbeddedVectors(tmp_path / "vectors")
        return
    server: LocalServer = request.getfixturevalue("milvus")
    yield open_vectors(server.url)
    milvus = open_vectors(server.url)  # the test may have closed its own
    for alias in list(milvus._aliases()):  # type: ignore[attr-defined]
        milvus._client.drop_alias(alias)  # type: ignore[attr-defined]
    for name in milvus.collections():
        milvus.drop(name)
    milvus.close()


def clustered(n: int, dim: int, *, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.4 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
