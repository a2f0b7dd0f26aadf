"""Distillation: a small student model trained on a large teacher's scores.

The student is a LightGBM regression on the teacher's log-odds (Ba and Caruana 2014:
matching the teacher's logits rather than its thresholded labels), so each training row
carries how sure the teacher is, not only which side it falls on; rows without labels
(not yet labelled, or simulated) can be used too. Its output is a score on the log-odds
scale: rankings, average precision and thresholds chosen on its own scores are what it
is for, not probabilities.

    student = distill(teacher.predict(x), x, names, BoostingConfig(num_boost_round=25))
"""

from __future__ import annotations

from dataclasses import replace

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError
from loopline.training.boosting import BoostingConfig

EPSILON = 1e-6  # probabilities are clipped to [EPSILON, 1 - EPSILON] before the log-odds


def logit(p: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The log-odds of probabilities ``p`` (clipped away from 0 and 1)."""
    q = np.clip(np.asarray(p, dtype=np.float64), EPSILON, 1 - EPSILON)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)


def distill(
    teacher_scores: npt.ArrayLike,
    x: npt.NDArray[np.float64],
    feature_names: list[str],
    config: BoostingConfig,
) -> lgb.Booster:
    """A student of ``config``'s size fitted to the log-odds of ``teacher_scores`` (the
    teacher's probabilities on rows ``x``) by least squares. ``config.objective`` must be
    ``binary`` (the teacher's task); its ``scale_pos_weight`` does not apply."""
    scores = np.asarray(teacher_scores, dtype=np.float64)
    if config.objective != "binary":
        raise ConfigError(
            f"distill() students a binary teacher; got BoostingConfig.objective "
            f"{config.objective!r}."
        )
    if scores.shape != (len(x),) or not np.all((scores >= 0) & (scores <= 1)):
        raise ConfigError(
            f"distill(teacher_scores=...) must be one probability in [0, 1] per row of x "
            f"({len(x)} rows); got shape {scores.shape}."
        )
    params = replace(config, scale_pos_weight=1.0).params()
    params.pop("scale_pos_weight")
    params["objective"] = "regression"
    data = lgb.Dataset(x, label=logit(scores), feature_name=feature_names, free_raw_data=True)
    return lgb.train(params, data, num_boost_round=config.num_boost_round)
