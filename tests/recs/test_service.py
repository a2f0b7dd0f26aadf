"""The recommendation service over HTTP (ASGI, in process), on MovieLens-100K with a
small model trained once: pages of unseen items with their sources and versions,
validation, new users, the vector index and the ranker down, clicks as labels and as
interactions, impressions on the event log, and the users' online features fed by the
interactions topic."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from loopline.apps.recs.data import load
from loopline.apps.recs.events import CLICKS, IMPRESSIONS, INTERACTIONS, Interaction
from loopline.apps.recs.model import RecsConfig
from loopline.apps.recs.retrieval import RetrievalConfig
from loopline.apps.recs.service import RecsService, ServeOptions, build
from loopline.apps.recs.split import random_split
from loopline.apps.recs.train import MODEL, items_of, train_and_register
from loopline.events import Message, TopicPartition
from loopline.registry import Registry
from loopline.serving import KeyRing, new_key
from loopline.training import BoostingConfig
from loopline.vectors import open_vectors

pytestmark = pytest.mark.anyio
KEY, SCOPE = new_key("app", ["score"])
SOURCES = {"embedding", "cooccurrence", "popularity", "explore"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, signing_keys: Path) -> tuple[Path, Any]:
    """A small recs model trained on 80 % of MovieLens-100K, registered, items indexed."""
    root = tmp_path_factory.mktemp("recs")
    data = load()
    split = random_split(data.user, data.item, (data.n_users, data.n_items), seed=0)
    config = RecsConfig(
        retrieval=RetrievalConfig(factors=16, iterations=5),
        per_retriever=50,
        ranker=BoostingConfig(objective="lambdarank", num_boost_round=30, num_leaves=7,
                              min_child_samples=50, threads=1),
    )  # fmt: skip
    registry = Registry(root=root / "state" / "registry")
    with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads would fight them
        version = train_and_register(
            registry, data, split.train, items_of(data), config=config,
            vectors=open_vectors(root / "state" / "vectors"),
        )  # fmt: skip
    assert version == 1
    KeyRing([SCOPE]).save(root / "state" / "keys.json")
    return root / "state", (data, split)


@pytest.fixture
def recs(trained: tuple[Path, Any], tmp_path: Path) -> Iterator[RecsService]:
    state, _ = trained
    built = build(
        ServeOptions(
            state=state, registry=f"sqlite:///{state / 'registry' / 'mlflow.db'}",
            events=f"file://{tmp_path / 'events.db'}", decisions=str(tmp_path / "log.db"),
            features=tmp_path / "features.db", watch_s=0,
        )
    )  # fmt: skip
    yield built
    built.close()


def client(recs: RecsService) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=recs.service), base_url="http://s")


async def recommend(c: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await c.post("/v1/recommend", json=body, headers={"X-API-Key": KEY})


def wait_for(condition: Callable[[], bool], deadline_s: float = 5.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "condition not met before the deadline"
        time.sleep(0.01)


def records(recs: RecsService, topic: str) -> list[dict[str, Any]]:
    found = recs.events.read(TopicPartition(topic, 0), 0, max_records=1000)
    return [msgspec.json.decode(r.value) for r in found]


async def test_a_known_user_gets_k_distinct_unseen_items(
    recs: RecsService, trained: tuple[Path, Any]
) -> None:
    _, (data, split) = trained
    async with client(recs) as c:
        r = await recommend(c, request_id="r-1", user=str(data.user_ids[0]), k=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["items"]) == 10 == len(set(body["items"]))
    seen = {str(data.item_ids[i]) for i in split.train[0].indices}
    assert not seen & set(body["items"])
    assert len(body["sources"]) == 10
    assert set(body["sources"]) <= SOURCES
    assert body["sources"][4] == body["sources"][9] == "explore"  # the explore slots
    assert body["model_version"] == f"{MODEL}:1"
    assert body["embedding_version"] == "v1"
    assert body["degraded"] == []
    assert recs.log.count() == 1
    wait_for(lambda: len(records(recs, IMPRESSIONS)) == 1)  # the impression, published
    impression = records(recs, IMPRESSIONS)[0]
    assert impression["items"] == body["items"]
    assert impression["request_id"] == "r-1"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"k": 0}, "k"),
        ({"k": 51}, "k"),
        ({"user": ""}, "user"),
        ({"session": ["1", "1"]}, "session"),
        ({"context": {"hour": 25}}, "hour"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_a_bad_field_is_a_422_naming_it(
    recs: RecsService, change: dict[str, Any], field: str
) -> None:
    async with client(recs) as c:
        r = await recommend(c, **{"request_id": "bad", "user": "1", **change})
    assert r.status_code == 422, r.text
    assert field in r.text


async def test_a_new_user_gets_popular_then_session_based_items(recs: RecsService) -> None:
    async with client(recs) as c:
        cold = (await recommend(c, request_id="n-1", user="someone-new", k=10,
                                context={"age": 23, "gender": "F"})).json()  # fmt: skip
        warm = (await recommend(c, request_id="n-2", user="someone-new", k=10,
                                session=["50", "181", "172"])).json()  # fmt: skip
    assert len(cold["items"]) == 10 == len(set(cold["items"]))
    assert {s for s in cold["sources"] if s != "explore"} == {"popularity"}
    assert len(warm["items"]) == 10
    assert not {"50", "181", "172"} & set(warm["items"])
    assert {"embedding", "cooccurrence"} & set(warm["sources"])  # the session steers it


async def test_the_vector_index_down_degrades_to_cooccurrence_and_popularity(
    recs: RecsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> None:
        raise ConnectionError("vector index unreachable")

    monkeypatch.setattr(recs.index, "snapshot", down)
    async with client(recs) as c:
        body = (await recommend(c, request_id="d-1", user="1", k=10)).json()
    assert body["degraded"] == ["vector_index"]
    assert len(body["items"]) == 10 == len(set(body["items"]))
    assert "embedding" not in body["sources"]
    assert body["embedding_version"] is None


async def test_the_ranker_down_answers_in_retrieval_order(
    recs: RecsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(x: np.ndarray) -> tuple[np.ndarray, bool]:
        raise RuntimeError("onnxruntime failed")

    monkeypatch.setattr(recs.deployment.routing.champion, "predict", broken)
    async with client(recs) as c:
        body = (await recommend(c, request_id="k-1", user="1", k=10)).json()
    assert body["degraded"] == ["ranker"]
    assert len(body["items"]) == 10 == len(set(body["items"]))


async def test_a_click_is_an_event_and_a_label(recs: RecsService) -> None:
    async with client(recs) as c:
        shown = (await recommend(c, request_id="c-1", user="2", k=10)).json()
        r = await c.post(
            "/v1/feedback", headers={"X-API-Key": KEY},
            json={"request_id": "c-1", "user": "2", "item": shown["items"][3], "position": 3},
        )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["logged"] is True
    wait_for(lambda: len(records(recs, CLICKS)) == 1)
    assert records(recs, CLICKS)[0]["item"] == shown["items"][3]
    assert recs.labels.run_once() == 1
    joined = recs.log.joined()
    at = joined.request_ids.index("c-1")
    assert joined.labels[at] == {shown["items"][3]: 1.0}
    # and an interaction with the item's genres: the user's session, once the worker runs
    wait_for(lambda: len(records(recs, INTERACTIONS)) == 1)
    (interaction,) = records(recs, INTERACTIONS)
    assert (interaction["user"], interaction["item"]) == ("2", shown["items"][3])
    assert interaction["clicked"] is True
    assert len(interaction["genres"]) == 19
    assert recs.interactions.run_once() == 1
    assert recs.pipeline.users.read_one("2").session == [shown["items"][3]]


async def test_interactions_feed_the_users_features_and_bad_ones_are_dead_lettered(
    recs: RecsService, trained: tuple[Path, Any]
) -> None:
    data, _ = trained[1]
    genres = tuple(float(g) for g in data.genres[list(data.item_ids).index("50")])
    now_ms = int(time.time() * 1000)
    good = Interaction(user="new-7", item="50", event_time_ms=now_ms, rating=5.0, genres=genres)
    hostile = [b'{"user": "x", "item": "<script>"}', b'{"user": "x", "item": "5", "genres": [1]}']
    recs.events.append_many(
        INTERACTIONS, [Message(msgspec.json.encode(good)), *(Message(v) for v in hostile)]
    )
    assert recs.interactions.run_once() == 3
    read = recs.pipeline.users.read_one("new-7")
    assert read.session == read.recent == ["50"]
    assert read.genre_counts is not None
    assert read.genre_counts.tolist() == list(genres)
    assert len(records(recs, f"{INTERACTIONS}.dlq")) == 2
    async with client(recs) as c:
        body = (await recommend(c, request_id="i-1", user="new-7", k=10)).json()
    assert "50" not in body["items"]  # seen in the session
    assert {"embedding", "cooccurrence"} & set(body["sources"])  # the session steers it


async def test_the_features_survive_a_restart(trained: tuple[Path, Any], tmp_path: Path) -> None:
    state, _ = trained
    options = ServeOptions(
        state=state, registry=f"sqlite:///{state / 'registry' / 'mlflow.db'}",
        events=f"file://{tmp_path / 'events.db'}", decisions=str(tmp_path / "log.db"),
        features=tmp_path / "features.db", watch_s=0,
    )  # fmt: skip
    first = build(options)
    event = Interaction(user="back", item="181", event_time_ms=int(time.time() * 1000))
    first.events.append_many(INTERACTIONS, [Message(msgspec.json.encode(event))])
    first.interactions.run_once()
    first.close()  # the store snapshots its state with the offsets
    again = build(options)
    try:
        assert again.pipeline.users.read_one("back").session == ["181"]
        assert again.interactions.caught_up()
        assert again.interactions.stats.events == 0
    finally:
        again.close()
