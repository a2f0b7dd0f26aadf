"""An embedding swap and a rollback through the recommendation service (ASGI, in process)
under continuous load from several clients: no failed request, no answer mixing two
versions; the check of "mixed" catches a query encoded for the other version; the
promote is gated by the shadow; the alias timeline's arithmetic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from loopline.apps.recs.swap import Embedding, EmbeddingSwap, SwapConfig
from loopline.apps.recs.train import MODEL
from loopline.demos.recs.swap import (
    MixedCheck,
    Timeline,
    Trained,
    new_releases,
    prepare,
    serve,
    swap_under_load,
)

NEW_ITEMS = 20


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Version 1 (indexed, champion) and version 2 (another seed, registered only)."""
    return prepare(tmp_path_factory.mktemp("swap"))


def test_a_swap_and_a_rollback_under_load_fail_no_request_and_mix_no_answer(
    trained: Trained, tmp_path: Path
) -> None:
    got = swap_under_load(tmp_path, trained=trained, clients=4, per_phase=30, new_items=NEW_ITEMS)
    assert got["swap_shadow_passed"], got
    assert got["swap_failed_requests"] == 0
    assert got["swap_mixed_answers"] == 0
    assert got["swap_degraded_answers"] == 0
    by_version = got["swap_answers_by_version"]
    assert by_version["v1"] >= 60  # before the swap and after the rollback
    assert by_version["v2"] >= 30  # after the promote
    assert got["swap_requests"] == sum(by_version.values())
    assert got["swap_embedding_items_checked"] >= got["swap_requests"]  # the check had work
    assert got["swap_new_items_in"] == {"v1": NEW_ITEMS, "v2": NEW_ITEMS}  # dual-written
    progress = got["swap_backfill_progress"]
    assert len(progress) > 1
    assert progress[-1][0] == progress[-1][1] > 1682  # every item, and the first new ones


def test_the_check_counts_answers_encoded_for_the_other_version_as_mixed(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recs = serve(trained, tmp_path)
    try:
        assert recs.index.snapshot().version == "v1"
        wrong = recs.pipeline.versions.get(2)  # v2's query encoder on v1's collection
        monkeypatch.setattr(recs.pipeline.versions, "get", lambda n, pinned=None: wrong)
        bodies = _recommend(recs, trained.key, [str(u) for u in range(1, 61)])
    finally:
        recs.close()
    registry = trained.registry()
    check = MixedCheck(
        {v: Embedding.of(registry, v, {}) for v in ("v1", "v2")}, config=recs.pipeline.config
    )
    with_embedding = [(u, b) for u, b in bodies if "embedding" in b["sources"]]
    assert all(b["embedding_version"] == "v1" for _, b in bodies)
    assert len(with_embedding) >= 10  # the ranker demotes most of these wrong items
    caught = sum(check.mixed(u, b) for u, b in with_embedding)
    assert caught >= 0.6 * len(with_embedding), f"{caught} of {len(with_embedding)} caught"


def test_a_version_failing_the_shadow_gate_is_not_promoted(
    trained: Trained, tmp_path: Path
) -> None:
    recs = serve(trained, tmp_path)
    try:
        ids, content, _ = new_releases(recs.pipeline.versions.get(1).catalogue, NEW_ITEMS)
        swap = EmbeddingSwap(
            recs.index.store, trained.registry(), 2, held_out=trained.held_out,
            state=recs.index.state, config=SwapConfig(min_overlap=1.0, users=50, chunk=1000),
            new_content=dict(zip(ids.tolist(), content, strict=True)),  # the earlier test's
        )  # fmt: skip
        result = swap.run()
        assert not result.promoted
        assert result.backfill.complete
        assert result.shadow.overlap_at_k < 1.0
        assert recs.index.snapshot().version == "v1"
        assert swap.index.phase == "live"  # the candidate's collection dropped
        swap.begin()
        swap.backfill()
        with pytest.raises(ValueError, match="no passing shadow report"):
            swap.promote()  # never forced
        swap.finish()
    finally:
        recs.close()
    gate = trained.registry().history(MODEL)[-1]
    assert (gate.version, gate.action, gate.passed) == (2, "embedding swap gate", False)


def test_the_timeline_allows_the_versions_live_during_a_request() -> None:
    timeline = Timeline("v1", [(10.0, 11.0, "v2"), (20.0, 21.0, "v1")])
    assert timeline.live_between(0.0, 9.0) == {"v1"}
    assert timeline.live_between(0.0, 10.5) == {"v1", "v2"}
    assert timeline.live_between(12.0, 19.0) == {"v2"}
    assert timeline.live_between(12.0, 25.0) == {"v1", "v2"}
    assert timeline.live_between(22.0, 30.0) == {"v1"}


def _recommend(recs: Any, key: str, users: list[str]) -> list[tuple[str, dict[str, Any]]]:
    import asyncio

    async def run() -> list[tuple[str, dict[str, Any]]]:
        transport = httpx.ASGITransport(app=recs.service)
        async with httpx.AsyncClient(transport=transport, base_url="http://recs") as c:
            out = []
            for i, user in enumerate(users):
                r = await c.post(
                    "/v1/recommend", headers={"X-API-Key": key},
                    json={"request_id": f"w-{i}", "user": user, "k": 10},
                )  # fmt: skip
                assert r.status_code == 200, r.text
                out.append((user, r.json()))
            return out

    return asyncio.run(run())
