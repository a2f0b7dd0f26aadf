"""Gradient-boosted trees with LightGBM, deterministic: the same data, configuration and
seed give the same model bytes (one code path: row-wise histograms, pinned threads,
LightGBM's ``deterministic`` mode).

Objectives by task (:mod:`loopline.tasks`): ``binary`` (a probability), ``lambdarank``
(a ranking score, trained on query groups: LambdaRank optimising NDCG) and
``multiclass`` (a probability per class).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError

Objective = Literal["binary", "lambdarank", "multiclass"]


@dataclass(frozen=True, kw_only=True)
class BoostingConfig:
    """LightGBM hyperparameters (``loopline train --config FILE`` reads a TOML table of
    these names).

    ``scale_pos_weight`` (binary only) handles class imbalance (a positive class of
    ~1 % of rows): it up-weights the positives' gradients; ranking metrics barely move
    with it, and the probabilities are re-calibrated by the threshold, not read as
    rates. ``num_class``: the number of classes of a ``multiclass`` objective.
    ``max_bin``: the most histogram bins per feature (LightGBM's default, 255, unless
    set).
    """

    objective: Objective = "binary"
    num_class: int = 0
    num_boost_round: int = 400
    learning_rate: float = 0.03
    num_leaves: int = 31
    min_child_samples: int = 50
    max_bin: int = 255
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

    def __post_init__(self) -> None:
        if self.objective not in ("binary", "lambdarank", "multiclass"):
            raise ConfigError(
                f"BoostingConfig.objective must be binary, lambdarank or multiclass; "
                f"got {self.objective!r}."
            )
        if (self.objective == "multiclass") != (self.num_class >= 2):
            raise ConfigError(
                "BoostingConfig.num_class must be at least 2 for a multiclass objective and "
                f"0 otherwise; got {self.num_class} with objective {self.objective!r}."
            )
        if self.max_bin < 2:
            raise ConfigError(
                f"BoostingConfig.max_bin must be at least 2 (LightGBM's default is 255); "
                f"got {self.max_bin}."
            )

    def params(self) -> dict[str, Any]:
        """LightGBM's parameter dictionary."""
        out: dict[str, Any] = asdict(self)
        out.pop("num_boost_round")  # an argument of lgb.train, not a parameter
        if self.objective != "binary":
            out.pop("scale_pos_weight")
        if self.objective != "multiclass":
            out.pop("num_class")
        out.update(
            num_threads=out.pop("threads"),
            deterministic=True,
            force_row_wise=True,
            verbosity=-1,
        )
        return out


def train(
    config: BoostingConfig,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.number],
    feature_names: list[str],
    *,
    group: npt.ArrayLike | None = None,
) -> lgb.Booster:
    """Fit ``config.objective`` on ``x`` (rows of features, NaN = missing) and ``y`` (0/1;
    graded relevance for ``lambdarank``; class indices for ``multiclass``). ``group``:
    the sizes of the consecutive query groups of rows (``lambdarank`` only)."""
    if (group is None) == (config.objective == "lambdarank"):
        raise ConfigError(
            "train(group=...) gives the query groups of a lambdarank objective, and only "
            f"of it (objective {config.objective!r}, group given: {group is not None})."
        )
    data = lgb.Dataset(x, label=y, group=group, feature_name=feature_names, free_raw_data=True)
    return lgb.train(config.params(), data, num_boost_round=config.num_boost_round)
