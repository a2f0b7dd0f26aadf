"""``loopline score fraud``: the fraud model's scores of a whole file of transactions,
into a database.

The input is what ``loopline simulate fraud --out DIR`` writes (``transactions.parquet``
and ``labels.parquet``, or the folder holding them). Every transaction gets its
point-in-time features from the offline engine (each against the transactions before it
and the labels that had arrived by then: the features training reads), is scored by the
registered bundle the online service loads (``registry.resolve`` -> the same loader,
ONNX Runtime), in chunks of ``chunk_rows`` (each split over the cores, every part on the
model's one-thread session), and written with its time, score, model version and
decision band (the bundle's thresholds applied to the model's score; the
service's rules are not applied) through :class:`loopline.ops.batch.ScoreSink`:
resumable, one row per transaction however often a run restarts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopline.apps.fraud import data
from loopline.apps.fraud.features import fraud_feature_set
from loopline.exceptions import ConfigError
from loopline.models import ServingModel, load
from loopline.ops import (
    ROW_KEY,
    BatchResult,
    Chunk,
    Scores,
    ScoreSink,
    SqlType,
    check_name,
    check_output,
    chunk_ranges,
    run_key,
    score_batches,
)
from loopline.registry import Registry

F64 = npt.NDArray[np.float64]
MODEL = "fraud"
TABLE = "fraud_scores"
CHUNK_ROWS = 50_000
COLUMNS: dict[str, SqlType] = {
    "event_time_ms": "INTEGER",
    "score": "REAL",
    "band": "TEXT",
    "model_version": "TEXT",
}


@dataclass(frozen=True, kw_only=True)
class ScoreOptions:
    """A batch scoring run (see the module docstring)."""

    inputs: Sequence[Path]
    output: str
    registry: Registry
    model: str = MODEL
    ref: str | int = "champion"
    chunk_rows: int = CHUNK_ROWS
    table: str = TABLE
    progress: bool = True

    def __post_init__(self) -> None:
        if self.chunk_rows < 1:
            raise ConfigError(f"--chunk-rows must be at least 1. Got {self.chunk_rows}.")
        if not self.inputs:
            raise ConfigError("Give at least one --input (a Parquet file or a folder).")
        check_output(self.output)  # before the features are computed, not after
        check_name(self.table)


@dataclass(frozen=True)
class Inputs:
    """The transactions (in time order) and labels read from the input files."""

    transactions: pa.Table
    labels: pa.Table
    files: list[Path]


def read_inputs(paths: Sequence[Path]) -> Inputs:
    """Transactions and labels from Parquet files or folders of them, told apart by their
    columns (labels have ``label_time_ms``)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = [path / data.TRANSACTIONS_FILE, path / data.LABELS_FILE]
            files += [p for p in found if p.exists()]
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"--input {path}: no such file or folder.")
    transactions: list[pa.Table] = []
    labels: list[pa.Table] = []
    for file in files:
        try:
            table = pq.read_table(file)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ConfigError(f"--input {file} is not a Parquet file: {exc}") from None
        (labels if "label_time_ms" in table.column_names else transactions).append(table)
    for name, got in (("transactions", transactions), ("labels", labels)):
        if not got:
            among = [str(f) for f in files] or [str(p) for p in paths]
            raise ConfigError(
                f"--input has no {name} file among {among}. "
                "Give the folder `loopline simulate fraud --out DIR` wrote, or both files."
            )
    tx = pa.concat_tables(transactions)
    # ties broken by id: the row order (and so the chunks a resumed run skips) must not
    # depend on the order the files were given in
    order = pc.sort_indices(
        tx, sort_keys=[("event_time_ms", "ascending"), ("transaction_id", "ascending")]
    )
    return Inputs(tx.take(order), pa.concat_tables(labels), files)


def features(inputs: Inputs) -> pa.Table:
    """Every transaction's point-in-time features, from the offline engine."""
    histories = data.histories(inputs.transactions, inputs.labels)
    return fraud_feature_set().offline(histories, histories["transactions"])


def matrix(table: pa.Table, names: Sequence[str]) -> F64:
    """The model's input matrix (rows in ``table``'s order, columns ``names``)."""
    return np.column_stack(
        [table[n].to_numpy(zero_copy_only=False).astype(np.float64) for n in names]
    )


def bands(model: ServingModel, scores: F64) -> npt.NDArray[np.str_]:
    """approve, review or decline at the bundle's thresholds (as the service decides
    before its rules)."""
    meta = model.signature.meta
    return np.where(
        scores >= meta["threshold"],
        "decline",
        np.where(scores >= meta["review_threshold"], "review", "approve"),
    )


def scorer(
    model: ServingModel, x: F64, ids: Any, times: Any, pool: ThreadPoolExecutor, parts: int
) -> Callable[[slice], Scores]:
    """A chunk (a slice of rows) -> its columns for the sink. The chunk is split over
    ``pool``'s threads: each part runs on the model's own one-thread session, so a row
    gets the score it gets online, however the chunk was split."""
    label = model.label

    def score(rows: slice) -> Scores:
        split = np.array_split(x[rows], parts)
        got = np.concatenate([s for s, _ in pool.map(model.predict, split)])
        return {
            ROW_KEY: ids[rows],
            "event_time_ms": times[rows],
            "score": got,
            "band": bands(model, got),
            "model_version": [label] * len(got),
        }

    return score


def run(
    options: ScoreOptions, *, after_chunk: Callable[[Chunk[slice]], None] | None = None
) -> dict[str, Any]:
    """Score the inputs into the database; return what was done.

    ``after_chunk`` is :func:`loopline.ops.batch.score_batches`' hook (called after each
    chunk commits)."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    inputs = read_inputs(options.inputs)
    mark = _lap(timings, "read", started)
    pinned = options.registry.resolve(options.model, options.ref)
    model = load(pinned)
    run = run_key(options.model, pinned.version, inputs.files)
    mark = _lap(timings, "model", mark)
    table = features(inputs)
    x = matrix(table, model.signature.inputs)
    ids = table["transaction_id"].to_numpy(zero_copy_only=False)
    times = table["event_time_ms"].to_numpy()
    mark = _lap(timings, "features", mark)
    n = len(x)
    threads = max(1, len(os.sched_getaffinity(0)))
    chunks: Iterator[Chunk[slice]] = (
        Chunk(first, rows, slice(first, first + rows))
        for first, rows in chunk_ranges(n, options.chunk_rows)
    )
    with (
        ScoreSink(options.output, table=options.table, columns=COLUMNS, run=run) as sink,
        ThreadPoolExecutor(threads) as pool,
    ):
        result: BatchResult = score_batches(
            chunks,
            scorer(model, x, ids, times, pool, threads),
            sink,
            total=n,
            progress=options.progress,
            after_chunk=after_chunk,
            label=f"scoring with {model.label}",
        )
        _lap(timings, "score_and_write", mark)
        stored = sink.count()
        where = sink.where
    return {
        "run": result.run,
        "model_version": model.label,
        "output": where,
        "table": options.table,
        "rows": result.rows,
        "written": result.written,
        "stored": stored,
        "chunks": result.chunks,
        "skipped_chunks": result.skipped,
        "chunk_rows": options.chunk_rows,
        "seconds": round(time.perf_counter() - started, 3),  # reading and features too
        "rows_per_s": round(result.rows / (time.perf_counter() - started)),
        "timings_s": timings,
    }


def _lap(timings: dict[str, float], name: str, mark: float) -> float:
    now = time.perf_counter()
    timings[name] = round(now - mark, 3)
    return now
