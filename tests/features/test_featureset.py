"""Request-time and derived features, feature sets, and the consistency check."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from loopline.apps.fraud import fraud_views, random_transactions
from loopline.cli import app
from loopline.exceptions import ConfigError
from loopline.features import FeatureSet, Ratio, RequestFeature, ZScore
from loopline.features.validate import mismatch_rates, validate
from loopline.features.worker import to_columns

SATURDAY_NOON = 1_767_225_600_000 + 9 * 86_400_000 + 12 * 3_600_000  # 2026-01-10 12:00 UTC


def test_request_features() -> None:
    cols = {
        "t": np.array([SATURDAY_NOON, SATURDAY_NOON - 2 * 86_400_000]),
        "amount": np.array([0.0, math.e - 1]),
        "channel": np.array(["cnp", "cp"]),
    }
    assert RequestFeature(name="h", column="t", transform="hour_of_day").compute(cols).tolist() == [
        12,
        12,
    ]
    assert RequestFeature(name="d", column="t", transform="day_of_week").compute(cols).tolist() == [
        5,
        3,
    ]
    assert RequestFeature(name="w", column="t", transform="is_weekend").compute(cols).tolist() == [
        1,
        0,
    ]
    assert RequestFeature(name="l", column="amount", transform="log1p").compute(cols).tolist() == [
        0,
        1,
    ]
    assert RequestFeature(name="c", column="channel", transform="equals", value="cnp").compute(
        cols
    ).tolist() == [1, 0]
    with pytest.raises(ConfigError, match="transform='equals' only"):
        RequestFeature(name="x", column="channel", value="cnp")


def test_derived_features_handle_zero_and_missing() -> None:
    cols = {
        "v": np.array([10.0, 10.0, 10.0]),
        "m": np.array([4.0, 4.0, np.nan]),
        "s": np.array([2.0, 0.0, np.nan]),
    }
    z = ZScore(name="z", value="v", mean="m", std="s").compute(cols)
    assert z[0] == 3.0
    assert np.isnan(z[1:]).all()
    r = Ratio(name="r", numerator="v", denominator="s").compute(cols)
    assert r[0] == 5.0
    assert np.isnan(r[1:]).all()


def test_a_derived_feature_must_read_defined_features() -> None:
    with pytest.raises(ConfigError, match="reads \\['nope'\\]"):
        FeatureSet(
            name="x",
            views=(),
            request=(RequestFeature(name="a", column="a"),),
            derived=(Ratio(name="r", numerator="a", denominator="nope"),),
        )


def test_a_set_including_each_event_has_no_skew_on_a_stream() -> None:
    # the benchmark's view set, read with each event merged in (read_event), plus
    # request-time and derived features; the fraud model's set (history before each
    # event, late labels) is checked in tests/fraud/test_features.py
    fs = FeatureSet(
        name="stream",
        views=fraud_views(),
        request=(RequestFeature(name="tx_amount", column="amount"),),
        derived=(
            ZScore(
                name="z", value="tx_amount", mean="card__amount_mean_7d", std="card__amount_std_7d"
            ),
            Ratio(name="r", numerator="card__amount_sum_1h", denominator="card__amount_sum_1d"),
        ),
    )
    fields = sorted({c for v in fs.views for c in v.columns})
    rates = validate(
        fs, to_columns(random_transactions(20_000, cards=300, seed=5), fields), sample=400, seed=5
    )
    assert len(rates) == 23
    assert rates == dict.fromkeys(rates, 0.0)


def test_mismatch_rates_count_differences() -> None:
    offline = pa.table({"a": [1.0, 2.0, float("nan"), 4.0], "b": [0.0, 0.0, 0.0, 0.0]})
    online = {
        "a": np.array([1.0, 2.5, np.nan, 4.0 + 1e-12]),
        "b": np.array([0.0, np.nan, 0.0, 0.0]),
    }
    assert mismatch_rates(online, offline) == {"a": 0.25, "b": 0.25}


def test_cli_validate_reports_zero_mismatches() -> None:
    result = CliRunner().invoke(
        app,
        ["features", "validate", "--customers", "100", "--days", "10", "--sample", "100", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["sample"] == 100
    assert len(report["mismatch_rates"]) == 44
    assert set(report["mismatch_rates"].values()) == {0.0}
