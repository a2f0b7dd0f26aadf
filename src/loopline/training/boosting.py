"""Gradient-boosted trees with LightGBM, deterministic: the same data, configuration and
seed give the same model bytes (one code path: row-wise histograms, pinned threads,
LightGBM's ``deterministic`` mode)."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError


@dataclass(frozen=True, kw_only=True)
class BoostingConfig:
    """LightGBM hyperparameters (``loopline train --config FILE`` reads a TOML table of
    these names).

    ``scale_pos_weight`` handles the class imbalance (fraud is ~1% of transactions): it
    up-weights the positives' gradients; ranking metrics barely move with it, and the
    probabilities are re-calibrated by the threshold, not read as rates.
    """

    num_boost_round: int = 400
    learning_rate: float = 0.03
    num_leaves: int = 31
    min_child_samples: int = 50
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    scale_pos_weight: float = 5.0
    threads: int = 2
    seed: int = 0

    @classmethod
    def from_toml(cls, path: Path) -> BoostingConfig:
        data = tomllib.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{path}: unknown hyperparameters {unknown}; the known ones are {sorted(known)}."
            )
        return replace(cls(), **data)

    def params(self) -> dict[str, Any]:
        """LightGBM's parameter dictionary."""
        out: dict[str, Any] = asdict(self)
        out.pop("num_boost_round")  # an argument of lgb.train, not a parameter
        out.update(
            objective="binary",
            num_threads=out.pop("threads"),
            deterministic=True,
            force_row_wise=True,
            verbosity=-1,
        )
        return out


def train(
    config: BoostingConfig,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.integer],
    feature_names: list[str],
) -> lgb.Booster:
    """Fit a binary classifier on ``x`` (rows of features, NaN = missing) and ``y``."""
    data = lgb.Dataset(x, label=y, feature_name=feature_names, free_raw_data=True)
    return lgb.train(config.params(), data, num_boost_round=config.num_boost_round)


def model_bytes(booster: lgb.Booster) -> bytes:
    """The model in LightGBM's text format (what is stored and hashed)."""
    return booster.model_to_string().encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
