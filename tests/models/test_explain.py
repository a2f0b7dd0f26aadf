"""Path attributions walk LightGBM's own trees: the same leaves, scores that add up."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from loopline.exceptions import ConfigError
from loopline.models.explain import PathExplainer


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, 6)) * 3
    y = ((x[:, 0] > 1) ^ (x[:, 1] < -2) | (x[:, 2] * x[:, 3] > 4)).astype(float)
    x[rng.random(x.shape) < 0.15] = np.nan  # missing values take each split's default
    x[rng.random(x.shape) < 0.1] = 0.0
    return x, y


@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_the_walk_reaches_lightgbms_leaves_and_adds_up_to_its_raw_score(
    zero_as_missing: bool,
) -> None:
    x, y = _data(0)
    params = {"objective": "binary", "num_leaves": 15, "verbose": -1,
              "zero_as_missing": zero_as_missing}  # fmt: skip
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=60)
    explainer = PathExplainer.from_booster(booster)
    probe, _ = _data(1)
    raw = booster.predict(probe, raw_score=True)
    leaves = booster.predict(probe, pred_leaf=True).astype(int)
    for i in range(300):
        contrib, score, reached = explainer.explain(probe[i], probe.shape[1])
        expected = [booster.get_leaf_output(t, leaves[i, t]) for t in range(booster.num_trees())]
        assert np.array_equal(explainer.leaf_value[reached], expected), f"row {i}"
        assert score == pytest.approx(raw[i], abs=1e-9)
        assert explainer.bias + contrib.sum() == pytest.approx(raw[i], abs=1e-9)


def test_the_features_that_decide_get_the_credit() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4000, 4))
    y = (x[:, 2] > 0.5).astype(float)  # only feature 2 matters
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, y), 40)
    contrib, _, _ = PathExplainer.from_booster(booster).explain(np.array([0, 0, 3.0, 0]), 4)
    assert int(np.argmax(contrib)) == 2
    assert contrib[2] > 10 * np.abs(np.delete(contrib, 2)).max()


def test_categorical_splits_are_refused_by_name() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, size=(2000, 2)).astype(float)
    y = (x[:, 0] == 3).astype(float)
    data = lgb.Dataset(x, y, categorical_feature=[0])
    booster = lgb.train({"objective": "binary", "verbose": -1, "min_data_per_group": 5}, data, 5)
    with pytest.raises(ConfigError, match="categorical"):
        PathExplainer.from_booster(booster)
