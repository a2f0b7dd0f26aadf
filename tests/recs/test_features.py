"""The recommender's user features: online (a feature worker on the interactions topic,
read as the service reads them) against offline (the training rows' features from the
topic's history), on MovieLens-100K interactions replayed as events, with hostile, late
and genre-less records among them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from loopline.apps.recs.data import MovieLens, load
from loopline.apps.recs.events import INTERACTIONS, Interaction
from loopline.apps.recs.features import (
    GENRE_COUNTS,
    RECENT,
    SESSION,
    VIEW,
    UserFeatures,
    history_of,
    interaction_columns,
    training_features,
    user_view,
)
from loopline.events import EventLog, Message, TopicPartition, open_log
from loopline.features import EmbeddedStore, FeatureWorker, OnlineEngine, hours, mismatch_rates

TP = TopicPartition(INTERACTIONS, 0)
HOSTILE = [b'{"user": "x", "item": "<script>"}', b"\xff", b'{"user": "u", "item": "1"}']


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    events = open_log(f"file://{tmp_path / 'events.db'}")
    events.create_topic(INTERACTIONS, partitions=1)
    yield events
    events.close()


def worker_of(log: EventLog, path: Path) -> FeatureWorker:
    engine = OnlineEngine(
        views=[user_view()], store=EmbeddedStore(path, snapshot_interval_s=math.inf)
    )
    return FeatureWorker(
        engine=engine, log=log, topic=INTERACTIONS, schema=Interaction, derive=interaction_columns
    )


def catch_up(worker: FeatureWorker) -> None:
    while worker.run_once():
        pass


def replay(data: MovieLens, users: int, seed: int = 0) -> tuple[list[bytes], list[int]]:
    """The interactions of ``users`` random users in time order (file order on ties), as
    records, and the positions of those interactions (the training rows); among them
    hostile records, events without genres, events too late (two hours behind the
    newest: dead-lettered) and late within the allowed hour (counted)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(data.n_users, size=users, replace=False)
    rows = np.flatnonzero(np.isin(data.user, chosen))
    rows = rows[np.argsort(data.time_s[rows], kind="stable")]
    out: list[bytes] = []
    rated: list[int] = []
    newest = 0
    for n, i in enumerate(rows.tolist()):
        t = int(data.time_s[i]) * 1000
        genres = tuple(float(g) for g in data.genres[data.item[i]]) if n % 17 else None
        event = Interaction(
            user=str(data.user_ids[data.user[i]]), item=str(data.item_ids[data.item[i]]),
            event_time_ms=t, rating=float(data.rating[i]), genres=genres,
        )  # fmt: skip
        rated.append(len(out))
        out.append(msgspec.json.encode(event))
        newest = max(newest, t)
        if n % 97 == 50:  # too late, then late but within the hour
            for behind in (hours(2), hours(1) // 2):
                late = msgspec.structs.replace(event, event_time_ms=newest - behind, item="1")
                out.append(msgspec.json.encode(late))
        if n % 211 == 100:
            out.append(HOSTILE[n % len(HOSTILE)])
    return out, rated


def test_online_equals_offline_on_movielens_replayed_as_events(
    log: EventLog, tmp_path: Path
) -> None:
    data = load()
    records, rated = replay(data, users=60)
    rng = np.random.default_rng(1)
    picks = np.sort(rng.choice(rated, size=300, replace=False))
    worker = worker_of(log, tmp_path / "features.db")
    features = UserFeatures(worker.engine)
    online: dict[str, list[np.ndarray]] = {}
    scored: list[tuple[str, int, int]] = []  # user, time, offset of each training row
    appended = 0
    for i in picks.tolist():
        event = msgspec.json.decode(records[i], type=Interaction)
        log.append_many(INTERACTIONS, [Message(v) for v in records[appended:i]])
        appended = i
        catch_up(worker)
        # read before the event is applied: what the request that led to it was served
        for name, value in features.read_many([event.user], [event.event_time_ms]).items():
            online.setdefault(name, []).append(value[0])
        scored.append((event.user, event.event_time_ms, i))  # offset i: all are appended
    log.append_many(INTERACTIONS, [Message(v) for v in records[appended:]])
    catch_up(worker)
    assert worker.stats.invalid == sum(r in HOSTILE for r in records) > 0
    assert worker.stats.late > 0
    dead = log.read(TopicPartition(f"{INTERACTIONS}.dlq", 0), 0, max_records=10_000)
    assert len(dead) == worker.stats.invalid + worker.stats.late

    history = history_of(log.read(TP, 0, max_records=len(records) + 1))
    assert history.num_rows == len(records) - worker.stats.invalid
    users, times, offsets = zip(*scored, strict=True)
    spine = pa.table(
        {
            "user": list(users),
            "event_time_ms": pa.array(times, pa.int64()),
            "_partition": pa.array([0] * len(scored), pa.int64()),
            "_offset": pa.array(offsets, pa.int64()),
        }
    )
    offline = training_features(history, spine)
    got = {f"{VIEW}__{name}": np.array(rows) for name, rows in online.items()}
    rates = mismatch_rates(got, offline)
    assert rates == dict.fromkeys(got, 0.0)
    # the comparison has substance: sessions, long lists and genre counts are not empty
    assert np.mean(~np.isnan(got[f"{VIEW}__{SESSION}"][:, 0])) > 0.5
    assert np.mean(~np.isnan(got[f"{VIEW}__{RECENT}"][:, 1])) > 0.8
    assert np.mean(got[f"{VIEW}__{GENRE_COUNTS}"].sum(axis=1) > 0) > 0.8
    worker.engine.store.close()


def test_a_read_gives_the_rankers_user_features(log: EventLog, tmp_path: Path) -> None:
    t = 1_750_000_000_000
    genres = tuple([1.0, 0.0] + [0.0] * 17)

    def event(item: str, at: int, g: tuple[float, ...] | None = genres) -> Message:
        return Message(
            msgspec.json.encode(Interaction(user="u", item=item, event_time_ms=at, genres=g))
        )

    log.append_many(
        INTERACTIONS,
        [
            event("7", t - hours(3)),  # before the session: listed as recent, counted
            event("8", t - 60_000, None),  # no genres: listed, not counted
            event("9", t - 30_000),
            event("8", t),  # again: listed once
        ],
    )
    worker = worker_of(log, tmp_path / "features.db")
    catch_up(worker)
    read = UserFeatures(worker.engine).read_one("u", t)
    assert read.session == ["8", "9"]
    assert read.recent == ["8", "9", "7"]
    assert read.genre_counts is not None
    assert read.genre_counts.tolist() == [3.0] + [0.0] * 18
    nobody = UserFeatures(worker.engine).read_one("nobody", t)
    assert (nobody.genre_counts, nobody.session, nobody.recent) == (None, [], [])
    worker.engine.store.close()


def test_a_batch_of_hostile_records_is_dead_lettered_and_the_worker_goes_on(
    log: EventLog, tmp_path: Path
) -> None:
    log.append_many(INTERACTIONS, [Message(v) for v in HOSTILE])
    worker = worker_of(log, tmp_path / "features.db")
    catch_up(worker)
    assert worker.stats.invalid == len(HOSTILE)
    assert worker.caught_up()
    good = Interaction(user="u", item="5", event_time_ms=1_750_000_000_000)  # no genres
    log.append_many(INTERACTIONS, [Message(msgspec.json.encode(good))])
    catch_up(worker)
    assert UserFeatures(worker.engine).read_one("u", good.event_time_ms).recent == ["5"]
    worker.engine.store.close()
