"""The fraud application's data: simulated streams as feature-engine histories, on disk or
in memory.

A simulation's transactions become the ``transactions`` source's history (with the
``card_device`` key, and each event's position as if published in time order to one
partition), its labels the ``labels`` source's history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.apps.fraud.features import with_card_device
from loopline.apps.fraud.simulator import Profile, Simulation, simulate
from loopline.exceptions import ConfigError

TRANSACTIONS_FILE = "transactions.parquet"
LABELS_FILE = "labels.parquet"


def write(sim: Simulation, out: Path) -> tuple[Path, Path]:
    """Write the transactions and labels as Parquet under ``out``; return the two paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = out / TRANSACTIONS_FILE, out / LABELS_FILE
    pq.write_table(sim.transactions, paths[0], compression="zstd")
    pq.write_table(sim.labels, paths[1], compression="zstd")
    return paths


def read(folder: Path) -> tuple[pa.Table, pa.Table]:
    """The transactions and labels written by :func:`write` (``loopline simulate fraud``)."""
    paths = folder / TRANSACTIONS_FILE, folder / LABELS_FILE
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(
            f"No simulated data at {missing}. Write it with "
            f"`loopline simulate fraud --out {folder}`."
        )
    return pq.read_table(paths[0]), pq.read_table(paths[1])


def histories(transactions: pa.Table, labels: pa.Table) -> dict[str, pa.Table]:
    """The feature engine's histories, by source name."""
    tx = with_card_device(transactions)
    n = tx.num_rows
    tx = tx.append_column("_partition", pa.array(np.zeros(n, dtype=np.int64)))
    tx = tx.append_column("_offset", pa.array(np.arange(n, dtype=np.int64)))
    return {"transactions": tx, "labels": labels}


def columns(table: pa.Table) -> dict[str, np.ndarray]:
    """NumPy columns as the online engine takes them (null strings as "")."""
    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        col = table[name]
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            out[name] = np.asarray(col.fill_null("").to_numpy(zero_copy_only=False), dtype=str)
        else:
            out[name] = col.to_numpy()
    return out


def simulated(setting: Profile | str, seed: int) -> dict[str, pa.Table]:
    """Simulate, and return the histories."""
    sim = simulate(setting, seed=seed)
    return histories(sim.transactions, sim.labels)


REQUEST_FIELDS = (
    "transaction_id", "event_time_ms", "card_token", "customer_id", "terminal_id",
    "merchant_category", "amount", "currency", "channel", "device_id", "latitude", "longitude",
)  # fmt: skip


def request_bodies(transactions: pa.Table) -> list[dict[str, Any]]:
    """Simulated transactions as ``POST /v1/score`` bodies (missing values left out)."""
    rows = transactions.select(list(REQUEST_FIELDS)).to_pylist()
    return [{k: v for k, v in row.items() if v is not None} for row in rows]
