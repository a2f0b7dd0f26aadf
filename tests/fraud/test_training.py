"""Training: deterministic models and metrics, ONNX parity, the registry's lifecycle."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from typer.testing import CliRunner

from loopline.apps.fraud.train import TrainOptions, run
from loopline.cli import app
from loopline.registry import Registry, RegistryError
from loopline.training import (
    BoostingConfig,
    TimeSplit,
    entity_precision_at_k,
    max_abs_difference,
    model_bytes,
    threshold_for_precision,
    to_onnx,
    train,
)

SMALL = {"customers": 400, "days": 90}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return Registry(root=tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, registry: Registry
) -> list[dict[str, object]]:
    """The same training run twice (simulator data, seed 3)."""
    out = tmp_path_factory.mktemp("models")
    options = TrainOptions(
        source="simulator", seed=3, out=out, registry=registry, progress=False, **SMALL
    )
    return [run(options), run(options)]


def test_training_is_deterministic(trained: list[dict[str, object]], registry: Registry) -> None:
    first, second = trained
    assert {k: v for k, v in first.items() if k not in ("model_version",)} == {
        k: v for k, v in second.items() if k not in ("model_version",)
    }
    a, b = (registry.get("fraud", int(r["model_version"])) for r in trained)  # type: ignore[call-overload]
    assert (a.path / "model.txt").read_bytes() == (b.path / "model.txt").read_bytes()
    assert (a.path / "model.onnx").read_bytes() == (b.path / "model.onnx").read_bytes()
    assert a.checksums["model.txt"] == b.checksums["model.txt"]
    assert a.tags["data.sha256"] == b.tags["data.sha256"]


def test_the_run_reports_metrics_and_lineage(
    trained: list[dict[str, object]], registry: Registry
) -> None:
    result = trained[0]
    for key in ("roc_auc", "average_precision", "recall_at_precision_99", "card_precision_at_100"):
        assert 0.0 <= float(result[key]) <= 1.0  # type: ignore[arg-type]
    assert float(result["roc_auc"]) > 0.8  # type: ignore[arg-type]
    assert float(result["onnx_max_abs_difference"]) <= 1e-5  # type: ignore[arg-type]
    report = Path(str(result["report"])).read_text()
    assert report.count("<svg") >= 3
    assert "calibration" in report
    v = registry.get("fraud", int(result["model_version"]))  # type: ignore[call-overload]
    assert v.metrics["roc_auc"] == result["roc_auc"]
    assert {"features.card", "features.terminal_risk", "data.sha256", "code.version"} <= set(v.tags)
    assert v.params["num_leaves"] == "31"
    signature = registry.resolve("fraud", v.version).signature
    assert signature.meta["threshold"] == result["threshold"]
    assert len(signature.inputs) == 44
    assert set(v.checksums) == {"model.txt", "model.onnx", "signature.json", "reference.parquet"}
    reference = pq.read_table(v.path / "reference.parquet")
    assert reference.column_names == [*signature.inputs, "score"]
    assert 0 < reference.num_rows <= 5000


def test_aliases_promotion_and_rollback(
    trained: list[dict[str, object]], registry: Registry
) -> None:
    first, second = (int(r["model_version"]) for r in trained)  # type: ignore[call-overload]
    assert registry.get("fraud", "champion").version == first
    assert registry.get("fraud", "challenger").version == second
    registry.promote("fraud", second)
    assert registry.get("fraud", "champion").version == second
    pinned = registry.resolve("fraud", "champion")
    assert pinned.version == second
    assert set(pinned.checksums) >= {"model.onnx"}
    assert registry.rollback("fraud").version == first
    assert registry.get("fraud", "champion").version == first
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback("fraud")
    with pytest.raises(RegistryError, match="no version or alias"):
        registry.get("fraud", 99)
    with pytest.raises(RegistryError, match="No registered model"):
        registry.get("nope", "champion")


def test_a_changed_artifact_fails_its_checksum(
    trained: list[dict[str, object]], registry: Registry
) -> None:
    v = registry.get("fraud", "champion")
    path = v.path / "signature.json"
    original = path.read_bytes()
    path.write_bytes(original + b" ")
    try:
        with pytest.raises(RegistryError, match="does not match its registered checksum"):
            registry.resolve("fraud")
    finally:
        path.write_bytes(original)


def test_models_cli(trained: list[dict[str, object]], registry: Registry) -> None:
    runner = CliRunner()
    uri = ["--registry", registry.uri]
    listed = runner.invoke(app, ["models", "list", *uri])
    assert listed.exit_code == 0, listed.output
    assert "fraud" in listed.output
    assert "champion" in listed.output
    shown = runner.invoke(app, ["models", "show", "fraud", "champion", *uri])
    assert json.loads(shown.output)["aliases"] == ["champion"]
    second = str(trained[1]["model_version"])
    promoted = runner.invoke(app, ["models", "promote", "fraud", second, *uri])
    assert promoted.output.strip() == f"fraud: champion -> version {second}"
    back = runner.invoke(app, ["models", "rollback", "fraud", *uri])
    assert "rolled back" in back.output


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 6)) * [1, 10, 1e3, 1e6, 0.01, 1]
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:, 5] = np.round(rng.uniform(45, 50, 4000), 5)  # coordinates: float32 rounds these
    y = ((np.nan_to_num(x[:, 0]) + (x[:, 5] > 47.5) + rng.normal(size=4000)) > 1.5).astype(int)
    return train(BoostingConfig(num_boost_round=60, threads=1), x, y, [f"f{i}" for i in range(6)])


@settings(max_examples=300, deadline=None)
@given(
    x=arrays(
        np.float32,
        (64, 6),
        elements=st.one_of(
            st.floats(width=32, allow_infinity=False),
            st.floats(45, 50, width=32),
            st.just(np.float32("nan")),
        ),
    )
)
def test_onnx_matches_lightgbm(booster: lgb.Booster, x: np.ndarray) -> None:
    assert max_abs_difference(booster, _onnx(booster), x) <= 1e-5


_ONNX: dict[int, bytes] = {}


def _onnx(booster: lgb.Booster) -> bytes:
    key = id(booster)
    if key not in _ONNX:
        _ONNX[key] = to_onnx(booster)
    return _ONNX[key]


def test_same_data_same_model_bytes() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3000, 4)), rng.integers(0, 2, 3000)
    config = BoostingConfig(num_boost_round=30, seed=5)
    assert model_bytes(train(config, x, y, list("abcd"))) == model_bytes(
        train(config, x, y, list("abcd"))
    )


def test_threshold_meets_the_precision_target() -> None:
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    op = threshold_for_precision(y, p, 0.99)
    assert op.threshold == 0.6
    assert op.precision == 1.0
    assert op.recall == 0.75


def test_card_precision_drops_cards_already_found() -> None:
    days = np.array([0, 0, 0, 1, 1])
    cards = np.array(["a", "b", "c", "a", "b"])
    y = np.array([1, 0, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.1, 0.9, 0.2])
    # day 0: top-2 {a (fraud), b} -> 0.5; day 1: a is known, left out -> b only -> 0.0
    assert entity_precision_at_k(days, cards, y, p, k=2) == pytest.approx(0.25)


def test_split_leaves_a_gap_for_the_label_delay() -> None:
    day = 86_400_000
    split = TimeSplit(start_ms=0, train_days=2, delay_days=3, test_days=1, validation_days=1)
    masks = split.masks(np.arange(-2, 8) * day)
    assert masks["validation"].tolist() == [False, True] + [False] * 8
    assert masks["train"].tolist() == [False, False, True, True] + [False] * 6
    assert masks["test"].tolist() == [False] * 7 + [True, False, False]
