"""Erasing one customer on the embedded profile: every store, every byte on disk."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from loopline.apps.fraud.erasure import Stores, erase_customer
from loopline.apps.fraud.features import fraud_views, model_views
from loopline.events import EmbeddedLog, TopicPartition
from loopline.features import EmbeddedStore
from loopline.predictions import open_prediction_log
from loopline.privacy import ErasureLog
from tests.privacy import seed
from tests.privacy.seed import A, B


def files_holding(root: Path, values: tuple[str, ...]) -> dict[str, list[str]]:
    """Every file under ``root`` whose raw bytes hold one of ``values``."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [v for v in values if v.encode() in data]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


@pytest.fixture
def state(tmp_path: Path) -> Path:
    root = tmp_path / "state"
    log = EmbeddedLog(root / "events.db")
    seed.seed_events(log)
    store = EmbeddedStore(root / "features.db", snapshot_interval_s=0)
    seed.seed_features(store)
    store.close()
    predictions = open_prediction_log(root / "decisions.db", columns=seed.COLUMNS)
    seed.seed_predictions(predictions)
    predictions.close()
    seed.seed_parquet(root / "data")
    seed.seed_report(root / "reports")
    log.close()
    return root


def test_a_customer_erased_leaves_no_byte_in_any_store(state: Path) -> None:
    assert set(files_holding(state, A.identifiers)) >= {
        "events.db", "features.db", "decisions.db", "data/transactions.parquet",
        "reports/scenario.html",
    }  # fmt: skip
    log = EmbeddedLog(state / "events.db")
    store = EmbeddedStore(state / "features.db")
    predictions = open_prediction_log(state / "decisions.db", columns=seed.COLUMNS)
    audit = ErasureLog(state / "audit" / "erasures.jsonl")
    stores = Stores(
        events=log, predictions=predictions, features=store, data=(state / "data",),
        reports=(state / "reports",), audit=audit,
    )  # fmt: skip

    report = erase_customer(A.id, stores)

    assert report.linked == 4  # A's card, device and two transactions
    assert report.counts == {
        "reports": 1,
        "offline features": 2,
        "online features": 4,  # card, customer, device, card|device
        "prediction log and labels": 3,  # two predictions, one label
        "dead letters": 1,
        "event log": 5,  # 2 transactions, 1 label, 1 notification, the malformed source
    }
    store.close()
    predictions.close()
    log.close()
    assert files_holding(state, A.identifiers) == {}
    # B is intact, store by store
    kept = files_holding(state, B.identifiers)
    assert {"events.db", "features.db", "decisions.db", "reports/scenario.html"} <= set(kept)
    assert set(kept["events.db"]) == set(B.identifiers)
    table = pq.read_table(state / "data" / "transactions.parquet")
    assert table["customer_id"].to_pylist() == [B.id, B.id]
    log = EmbeddedLog(state / "events.db")
    assert [len(log.read(TopicPartition("transactions", p), 0)) for p in (0, 1)] in (
        [2, 0], [0, 2],
    )  # fmt: skip
    predictions = open_prediction_log(state / "decisions.db", columns=seed.COLUMNS)
    assert predictions.count() == 2
    assert predictions.joined().labels == [{"": 1.0}, {}]
    # the audit line names no one; the keyed hash answers "was A erased?"
    audit_text = (state / "audit" / "erasures.jsonl").read_text()
    assert all(v not in audit_text for v in A.identifiers)
    (line,) = audit.reports()
    assert line.subject_hash == audit.subject_hash(A.id) != audit.subject_hash(B.id)
    assert line.counts == report.counts


def test_features_of_the_erased_customer_read_as_new_entities(state: Path) -> None:
    store = EmbeddedStore(state / "features.db")
    predictions = open_prediction_log(state / "decisions.db", columns=seed.COLUMNS)
    log = EmbeddedLog(state / "events.db")
    erase_customer(
        A.id,
        Stores(events=log, predictions=predictions, features=store,
               audit=ErasureLog(state / "erasures.jsonl")),
    )  # fmt: skip
    versions = [v.version for v in (*model_views(), *fraud_views())]
    assert all(not store.locate(v, A.card) for v in versions)
    assert any(store.locate(v, B.card) for v in versions)
    store.close()
    predictions.close()
    log.close()
