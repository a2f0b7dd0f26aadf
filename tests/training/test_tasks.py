"""Training by task: binary, LambdaRank and multiclass models fit, export to ONNX within
tolerance, register as bundles and load back for serving with the same outputs."""

from __future__ import annotations

import numpy as np
import pytest

from loopline.exceptions import ConfigError
from loopline.models import load
from loopline.registry import Registry
from loopline.training import BoostingConfig, bundle, task_of, train

NAMES = ["a", "b", "c", "d"]


def _data(objective: str) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    x[rng.random(x.shape) < 0.05] = np.nan
    signal = np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1])
    if objective == "binary":
        return x, (signal > 0.3).astype(int), {}
    if objective == "lambdarank":
        return x, np.digitize(signal, [-0.5, 0.5, 1.5]), {"group": [20] * 30}
    return x, np.digitize(signal, [-0.5, 0.5]), {}


@pytest.mark.parametrize(
    ("objective", "task", "outputs", "shape"),
    [
        ("binary", "binary", ("score",), (5,)),
        ("lambdarank", "ranking", ("score",), (5,)),
        ("multiclass", "multiclass", ("low", "mid", "high"), (5, 3)),
    ],
)
def test_each_task_trains_exports_registers_and_serves(
    tmp_path_factory: pytest.TempPathFactory,
    objective: str,
    task: str,
    outputs: tuple[str, ...],
    shape: tuple[int, ...],
) -> None:
    x, y, extra = _data(objective)
    config = BoostingConfig(
        objective=objective,  # type: ignore[arg-type]
        num_class=3 if objective == "multiclass" else 0,
        num_boost_round=40, threads=1,
    )  # fmt: skip
    booster = train(config, x, y, NAMES, **extra)  # type: ignore[arg-type]
    assert task_of(booster) == task
    packed, diff = bundle(booster, x, outputs=outputs, meta={"note": "kept"})
    assert diff <= 1e-5
    assert packed.signature.task == task
    assert packed.signature.inputs == tuple(NAMES)
    registry = Registry(root=tmp_path_factory.mktemp(objective))
    version = registry.register(objective, bundle=packed, metrics={}, params={}, tags={})
    model = load(registry.resolve(objective, version.version))
    got, fell_back = model.predict(x[:5])
    assert not fell_back
    assert got.shape == shape
    native = booster.predict(x[:5].astype(np.float32).astype(np.float64))
    assert np.abs(got - native.reshape(shape)).max() <= 1e-5
    assert model.signature.meta == {"note": "kept"}
    if objective == "multiclass":
        assert np.allclose(got.sum(axis=1), 1.0), "class probabilities"


def test_objectives_are_checked() -> None:
    with pytest.raises(ConfigError, match="num_class"):
        BoostingConfig(objective="multiclass")
    with pytest.raises(ConfigError, match="objective"):
        BoostingConfig(objective="poisson")  # type: ignore[arg-type]
    x, y, _ = _data("lambdarank")
    with pytest.raises(ConfigError, match="group"):
        train(BoostingConfig(objective="lambdarank", num_boost_round=2), x, y, NAMES)


def test_max_bin_reaches_lightgbm_and_is_checked() -> None:
    x, y, _ = _data("binary")
    booster = train(BoostingConfig(num_boost_round=2, max_bin=15, threads=1), x, y, NAMES)
    assert "[max_bin: 15]" in booster.model_to_string()
    assert BoostingConfig().params()["max_bin"] == 255  # LightGBM's default: models unchanged
    with pytest.raises(ConfigError, match="max_bin"):
        BoostingConfig(max_bin=1)
