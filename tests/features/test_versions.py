"""Versioned definitions: a new version catches up from the log; rollback is re-pointing."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from loopline.apps.fraud import Transaction, random_transactions
from loopline.events import Codec, EmbeddedLog, Message
from loopline.exceptions import ConfigError
from loopline.features import (
    Aggregation,
    EmbeddedStore,
    Entity,
    FeatureView,
    OnlineEngine,
    Source,
    hours,
    minutes,
    training_set,
)
from loopline.features.catalog import Catalog
from loopline.features.history import history_table
from loopline.features.worker import FeatureWorker

SOURCE = Source(name="transactions", topic="transactions", timestamp="event_time_ms")
CARD = Entity(name="card", join_key="card_token")
V1 = FeatureView(
    name="card",
    entity=CARD,
    source=SOURCE,
    aggregations=(Aggregation(function="count", windows=(minutes(1),)),),
)
V2 = FeatureView(
    name="card",
    entity=CARD,
    source=SOURCE,
    aggregations=(Aggregation(function="count", windows=(minutes(1), hours(1))),),
)


def test_catalog_versions_pointing_and_retiring(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.db")
    assert catalog.register(V1) == V1.version
    catalog.register(V2, serve=False)
    assert V1.version != V2.version
    assert catalog.serving("card") == V1
    catalog.point("card", V2.version)
    assert catalog.serving("card") == V2
    catalog.point("card", V1.version)  # rollback
    assert catalog.serving("card") == V1
    with pytest.raises(ConfigError, match="serves view 'card'"):
        catalog.retire("card", V1.version)
    catalog.retire("card", V2.version)
    assert catalog.maintained() == [V1]
    with pytest.raises(ConfigError, match="retired"):
        catalog.point("card", V2.version)
    catalog.register(V2)  # back from retirement, not served
    assert [(v.version, v.serving) for v in catalog.versions("card")] == [
        (V1.version, True),
        (V2.version, False),
    ]


def test_a_new_version_catches_up_and_rollback_is_instant(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "events.db")
    log.create_topic("transactions", partitions=2)
    codec = Codec(Transaction)
    txs = random_transactions(6000, cards=50, seed=9)
    log.append_many(
        "transactions",
        [
            Message(codec.encode(t), key=t.card_token.encode(), timestamp_ms=t.event_time_ms)
            for t in txs
        ],
    )
    store = EmbeddedStore(tmp_path / "online.db")
    first = OnlineEngine(views=[V1], store=store)
    worker = FeatureWorker(engine=first, log=log, topic="transactions", schema=Transaction)
    worker.run(until=worker.caught_up)

    both = OnlineEngine(views=[V1, V2], store=store, serving={"card": V1.version})
    worker = FeatureWorker(engine=both, log=log, topic="transactions", schema=Transaction)
    assert not worker.caught_up()  # V2 starts from the beginning of the log
    worker.run(until=worker.caught_up)

    t_end = max(t.event_time_ms for t in txs)
    keys = sorted({t.card_token for t in txs})
    spine = pa.table({"card_token": keys, "event_time_ms": [t_end] * len(keys)})
    history = history_table(log, "transactions", Transaction, V2.columns)
    for view in (V1, V2):
        truth = training_set(view, history, spine).to_pylist()
        served = both.read(view, keys, as_of_ms=t_end)
        for row, values in zip(truth, served, strict=True):
            assert values.values == {f.name: row[f"card__{f.name}"] for f in view.features}
    assert both.read("card", keys[:1], as_of_ms=t_end)[0].values.keys() == {"count_1m"}
    both.point("card", V2.version)
    assert both.read("card", keys[:1], as_of_ms=t_end)[0].values.keys() == {"count_1m", "count_1h"}
    both.point("card", V1.version)
    assert both.read("card", keys[:1], as_of_ms=t_end)[0].values.keys() == {"count_1m"}
