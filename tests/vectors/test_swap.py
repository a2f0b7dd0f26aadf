"""Swapping the embedding model behind an alias, under query load, on each backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from loopline.exceptions import ConfigError
from loopline.vectors import Backfill, EmbeddedVectors, Matches, VectorStore, VersionedIndex
from tests.vectors.conftest import BACKENDS

# Two "models" a query cannot confuse: v1 embeds in 8 dimensions with scores in [-1, 1];
# v2 in 12, every stored vector ending in 10 and every query in 1, so its scores lie in
# [9, 11]. A query encoded for one version fails on the other's collection (dimensions),
# and an answer's scores say which collection produced it.
DIMS = {"v1": 8, "v2": 12}
RANGES = {"v1": (-1.01, 1.01), "v2": (8.99, 11.01)}


def _unit(ids: np.ndarray, dim: int, salt: int) -> np.ndarray:
    rows = [np.random.default_rng([int(i), salt]).normal(size=dim) for i in ids]
    x = np.asarray(rows, dtype=np.float32).reshape(len(ids), dim)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def items_v1(ids: np.ndarray) -> np.ndarray:
    return _unit(ids, 8, 1)


def items_v2(ids: np.ndarray) -> np.ndarray:
    return np.hstack([_unit(ids, 11, 2), np.full((len(ids), 1), 10, np.float32)])


def query_for(version: str, ids: np.ndarray) -> np.ndarray:
    if version == "v1":
        return items_v1(ids)
    return np.hstack([_unit(ids, 11, 2), np.ones((len(ids), 1), np.float32)])


def genres(ids: np.ndarray) -> dict[str, np.ndarray]:
    return {"genre": ids % 5}


def versioned(
    store: VectorStore, tmp_path: Path, encoders: dict[str, object] | None = None
) -> VersionedIndex:
    return VersionedIndex(
        store,
        alias="items",
        encoders=encoders or {"v1": items_v1, "v2": items_v2},  # type: ignore[dict-item]
        attrs=["genre"],
        state=tmp_path / "items.versions.json",
    )


def self_recall(version: str, found: Matches) -> float:
    return float(np.mean(found.ids[:, 0] == np.arange(len(found.ids))))


class Load:
    """Threads querying through snapshots until stopped, checking every answer."""

    def __init__(self, index: VersionedIndex, threads: int = 3) -> None:
        self.index = index
        self.stop = threading.Event()
        self.failed: list[BaseException] = []
        self.mixed: list[str] = []
        self.answers = {"v1": 0, "v2": 0}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(t,)) for t in range(threads)]

    def _run(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        while not self.stop.is_set():
            try:
                snapshot = self.index.snapshot()
                ids = rng.integers(0, 300, 2)
                answer = snapshot.search(
                    query_for(snapshot.version, ids), 5, where={"genre": [0, 1, 2]}
                )
            except BaseException as error:  # every failure is counted, none is lost
                self.failed.append(error)
                continue
            low, high = RANGES[answer.version]
            ok = answer.version == snapshot.version
            ok = ok and snapshot.index.name == f"items__{answer.version}"
            ok = ok and bool(((answer.scores >= low) & (answer.scores <= high)).all())
            ok = ok and bool(np.isin(answer.ids % 5, [0, 1, 2]).all())
            with self.lock:
                self.answers[answer.version] += 1
                if not ok:
                    self.mixed.append(f"{answer.version}: {answer.scores.tolist()}")

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, "the load never got there"
            time.sleep(0.01)


@pytest.mark.parametrize("store", BACKENDS, indirect=True)
def test_a_whole_swap_and_a_rollback_under_query_load(store: VectorStore, tmp_path: Path) -> None:
    index = versioned(store, tmp_path)
    index.begin("v1", dim=8)
    old = np.arange(300, dtype=np.int64)
    index.upsert(old, genres(old))
    with Load(index) as load:
        load.wait_for(lambda: load.answers["v1"] >= 10)
        index.begin("v2", dim=12)
        during = np.arange(1000, 1020, dtype=np.int64)
        index.upsert(during[:10], genres(during[:10]))  # dual-written before the backfill

        def progress(state: Backfill) -> None:
            if state.done == 100:  # and some in the middle of it
                index.upsert(during[10:], genres(during[10:]))

        done = index.backfill(chunk=50, progress=progress)
        assert done.complete
        assert done.done == 310
        assert done.total == 310
        report = index.shadow(
            lambda v: query_for(v, old[:100]), k=5, quality=self_recall, max_quality_drop=0.05
        )
        assert report.passed
        assert report.quality_new >= 0.95
        assert report.queries == 100
        seen = load.answers["v1"]
        index.promote()
        load.wait_for(lambda: load.answers["v2"] >= 10)
        index.rollback()
        after = load.answers["v1"]
        load.wait_for(lambda: load.answers["v1"] >= after + 10)
    assert load.failed == []
    assert load.mixed == []
    assert seen >= 10
    assert index.phase == "dual_write"
    assert index.live == "v1"
    everything = np.concatenate([old, during])
    for version in ("v1", "v2"):
        collection = store.open(f"items__{version}")
        assert collection.ids().tolist() == everything.tolist()
        found = collection.search(query_for(version, during), 1)
        assert found.ids[:, 0].tolist() == during.tolist()  # new items found in both versions


def test_promote_needs_a_backfill_and_a_passing_shadow(tmp_path: Path) -> None:
    index = versioned(EmbeddedVectors(tmp_path / "v"), tmp_path)
    index.begin("v1", dim=8)
    index.upsert(np.arange(50), genres(np.arange(50)))
    index.begin("v2", dim=12)
    with pytest.raises(ConfigError, match="not backfilled"):
        index.promote()
    index.backfill(chunk=20)
    report = index.shadow(
        lambda v: query_for(v, np.arange(50)), k=5, quality=self_recall, min_overlap=0.99
    )
    assert not report.passed
    assert 0 <= report.overlap_at_k < 0.99
    with pytest.raises(ConfigError, match="no passing shadow"):
        index.promote()
    index.promote(force=True)
    index.finish()
    assert index.phase == "live"
    assert index.live == "v2"
    assert index.store.collections() == ["items__v2"]
    assert index.snapshot().version == "v2"


def test_a_killed_backfill_resumes_after_its_last_checkpoint(tmp_path: Path) -> None:
    index = versioned(EmbeddedVectors(tmp_path / "v"), tmp_path)
    index.begin("v1", dim=8)
    ids = np.arange(0, 1000, 2, dtype=np.int64)  # 500 items
    index.upsert(ids, genres(ids))
    index.store.close()
    index = versioned(EmbeddedVectors(tmp_path / "v"), tmp_path)
    index.begin("v2", dim=12)

    class KilledError(Exception):
        pass

    def kill_after_three(state: Backfill) -> None:
        if state.done == 120:
            raise KilledError

    with pytest.raises(KilledError):
        index.backfill(chunk=40, progress=kill_after_three)
    # a new process: the store and the state reloaded from disk, the old objects abandoned
    embedded: list[int] = []

    def counting_v2(batch: np.ndarray) -> np.ndarray:
        embedded.extend(batch.tolist())
        return items_v2(batch)

    resumed = versioned(
        EmbeddedVectors(tmp_path / "v"), tmp_path, {"v1": items_v1, "v2": counting_v2}
    )
    seen: list[int] = []
    done = resumed.backfill(chunk=40, progress=lambda s: seen.append(s.done))
    assert embedded == ids[120:].tolist()  # exactly the ids after the checkpoint
    assert seen[0] == 160
    assert done.done == 500
    assert done.complete
    assert resumed.store.open("items__v2").ids().tolist() == ids.tolist()
