"""``loopline score fraud``: batch scores equal the online service's for the same
transactions, and the command works end to end (resumed, refused inputs)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from loopline.apps.fraud import data
from loopline.apps.fraud.batch import ScoreOptions, run
from loopline.apps.fraud.events import Label
from loopline.apps.fraud.labels import LABELS
from loopline.apps.fraud.simulator import profile, simulate
from loopline.cli import app
from loopline.events import Codec, Message
from loopline.exceptions import ConfigError
from loopline.registry import Registry

from .conftest import make_service
from .test_service import client, score

SCORED = 300  # transactions replayed through both paths


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first transactions of a small simulation and the labels of those, as
    ``loopline simulate fraud --out`` writes them."""
    sim = simulate(profile("full", customers=12, terminals=36, days=30), seed=3)
    tx = sim.transactions.slice(0, SCORED)
    mine = pc.is_in(sim.labels["transaction_id"], value_set=tx["transaction_id"])
    labels = sim.labels.filter(mine)
    labels = labels.take(pc.sort_indices(labels, sort_keys=[("label_time_ms", "ascending")]))
    out = tmp_path_factory.mktemp("small-set")
    pq.write_table(tx, out / data.TRANSACTIONS_FILE)
    pq.write_table(labels, out / data.LABELS_FILE)
    return out


def stored(db: Path, table: str = "fraud_scores") -> dict[str, tuple[float, str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT row_key, score, band, model_version FROM {table}").fetchall()
    return {key: (score, band, version) for key, score, band, version in rows}


@pytest.mark.anyio
async def test_batch_scores_are_exactly_the_online_services(
    tmp_path: Path, fraud_registry: Registry, rules_file: Path, small_set: Path
) -> None:
    db = tmp_path / "scores.db"
    result = run(
        ScoreOptions(
            inputs=[small_set], output=f"sqlite:///{db}", registry=fraud_registry,
            chunk_rows=64, progress=False,
        )
    )  # fmt: skip
    assert (result["rows"], result["stored"], result["chunks"]) == (SCORED, SCORED, 5)
    batch = stored(db)

    # the online path: the real service, each transaction posted in time order after
    # the labels that had arrived by its time, its learner caught up (as when idle)
    tx = pq.read_table(small_set / data.TRANSACTIONS_FILE)
    labels = pq.read_table(small_set / data.LABELS_FILE).to_pylist()
    svc = make_service(tmp_path, fraud_registry, rules_file)
    codec = Codec(Label)
    fed = 0
    try:
        async with client(svc) as c:
            for body in data.request_bodies(tx):
                arrived = labels[fed:]
                due = [x for x in arrived if x["label_time_ms"] <= body["event_time_ms"]]
                if due:
                    svc.events.append_many(LABELS, [Message(codec.encode(Label(**x))) for x in due])
                    fed += len(due)
                    svc.labels.run_once()
                svc.pipeline.tabular.learner.flush()
                r = await score(c, body)
                assert r.status_code == 200, r.text
        decided = svc.log.joined()
    finally:
        svc.close()
    assert fed > 50, "labels arrived during the replay: terminal risk is exercised"
    online = {
        key: outputs["model_score"]
        for key, outputs in zip(decided.request_ids, decided.outputs, strict=True)
    }
    assert len(online) == SCORED
    assert set(online) == set(batch)
    differ = {k: (online[k], batch[k][0]) for k in online if online[k] != batch[k][0]}
    assert not differ, f"{len(differ)} of {SCORED} scores differ, e.g. {list(differ.items())[:3]}"
    assert {v for _, _, v in batch.values()} == {"fraud:1"}
    assert len({s for s, _, _ in batch.values()}) > 50, "the scores vary"


def test_the_command_scores_resumes_and_refuses_bad_options(
    tmp_path: Path, fraud_registry: Registry, small_set: Path
) -> None:
    db = tmp_path / "out" / "scores.db"
    args = [
        "score", "fraud", "--input", str(small_set / data.TRANSACTIONS_FILE),
        "--input", str(small_set / data.LABELS_FILE), "--output", f"sqlite:///{db}",
        "--registry", fraud_registry.uri, "--chunk-rows", "100", "--json",
    ]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    got = json.loads(first.stdout)
    assert (got["rows"], got["written"], got["stored"], got["chunks"]) == (
        SCORED,
        SCORED,
        SCORED,
        3,
    )
    assert got["model_version"] == "fraud:1"
    rows = stored(db)
    bands = {band for _, band, _ in rows.values()}
    assert bands <= {"approve", "review", "decline"}
    assert "approve" in bands

    again = json.loads(CliRunner().invoke(app, args).stdout)
    assert (again["written"], again["skipped_chunks"], again["stored"]) == (0, 3, SCORED)
    assert again["run"] == got["run"]

    other = CliRunner().invoke(app, [*args, "--ref", "2"])  # another model: rows of its own
    assert other.exit_code == 0, other.output
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT run_key, count(*) FROM fraud_scores GROUP BY 1").fetchall()
    assert sorted(n for _, n in runs) == [SCORED, SCORED]
    assert sorted(k.split(":")[1] for k, _ in runs) == ["1", "2"]

    hostile = CliRunner().invoke(app, [*args, "--table", "scores; DROP TABLE x"])
    assert isinstance(hostile.exception, ConfigError)  # `loopline` prints it, no traceback
    assert "must be lower_snake_case" in str(hostile.exception)
    wrong = CliRunner().invoke(app, [*args[:2], "--input", str(tmp_path), *args[6:]])
    assert isinstance(wrong.exception, ConfigError)
    assert "no transactions file" in str(wrong.exception)


def test_inputs_are_read_in_time_order_from_files_or_a_folder(small_set: Path) -> None:
    from loopline.apps.fraud.batch import read_inputs

    tx = pq.read_table(small_set / data.TRANSACTIONS_FILE)
    shuffled = small_set.parent / "shuffled.parquet"
    order = np.random.default_rng(0).permutation(tx.num_rows)
    pq.write_table(tx.take(pa.array(order)), shuffled)
    got = read_inputs([shuffled, small_set / data.LABELS_FILE])
    times = got.transactions["event_time_ms"].to_numpy()
    assert (np.diff(times) >= 0).all()
    assert got.transactions.num_rows == SCORED
    assert read_inputs([small_set]).labels.num_rows == got.labels.num_rows


@pytest.mark.postgres
def test_the_command_writes_to_postgres_and_never_shows_its_password(
    fraud_registry: Registry, small_set: Path, postgres_url: str
) -> None:
    import psycopg

    password = psycopg.conninfo.conninfo_to_dict(postgres_url).get("password")
    args = [
        "score", "fraud", "--input", str(small_set), "--output", postgres_url,
        "--registry", fraud_registry.uri, "--chunk-rows", "128", "--table", "pg_scores",
    ]  # fmt: skip
    try:
        shown = CliRunner().invoke(app, args)
        assert shown.exit_code == 0, shown.output
        assert "stored: 300" in shown.output
        if password:
            assert str(password) not in shown.output
            assert "***" in shown.output
        again = CliRunner().invoke(app, [*args, "--json"])
        assert json.loads(again.stdout)["skipped_chunks"] == 3
        with psycopg.connect(postgres_url) as conn:
            count = conn.execute("SELECT count(DISTINCT row_key), count(*) FROM pg_scores")
            assert count.fetchone() == (SCORED, SCORED)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS pg_scores, pg_scores_chunks")
