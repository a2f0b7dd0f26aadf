"""The fraud model's data sets: simulated transactions with their point-in-time features
(the offline engine), or the real ULB data, each cut by time into validation, train and
test."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from loopline.apps.fraud import data, ulb
from loopline.apps.fraud.features import fraud_feature_set
from loopline.apps.fraud.simulator import START_MS, Profile
from loopline.exceptions import ConfigError
from loopline.features import FeatureSet
from loopline.training import TimeSplit
from loopline.units import DAY_MS

HANDBOOK_TRAIN_DAY = 115  # 2018-07-25 in the handbook's run that starts 2018-04-01


@dataclass
class Dataset:
    """Rows of features with labels, and where each row belongs."""

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.int8]
    names: list[str]
    parts: dict[str, npt.NDArray[np.bool_]]  # validation / train / test masks
    times: npt.NDArray[np.int64]
    cards: npt.NDArray[np.str_] | None = None
    scenarios: npt.NDArray[np.str_] | None = None
    lineage: dict[str, str] = field(default_factory=dict)
    extra: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)


def simulator_split(p: Profile) -> TimeSplit:
    """The simulator's split: 7 validation days, 21 train, 14 delay, 14 test, ending at
    the simulation's end (30 days of history before validation for the windows)."""
    test_end = p.days
    start_day = test_end - 14 - 14 - 21
    if start_day - 7 < 30:
        raise ConfigError(
            f"The simulator split needs at least 86 days; the profile has {p.days}. "
            "Pass --days 90 or more."
        )
    return TimeSplit(
        start_ms=START_MS + start_day * DAY_MS,
        train_days=21,
        delay_days=14,
        test_days=14,
        validation_days=7,
    )


def handbook_split() -> TimeSplit:
    return TimeSplit(start_ms=START_MS + HANDBOOK_TRAIN_DAY * DAY_MS)


def simulated_dataset(
    p: Profile,
    split: TimeSplit,
    seed: int,
    *,
    handbook: bool = False,
    feature_set: FeatureSet | None = None,
) -> Dataset:
    """Simulate, then compute the fraud feature set (or ``feature_set``) for the split's
    rows (offline).

    ``handbook``: test under the handbook's protocol (cards known compromised by a test
    day, from training or from the labels of the delay period, are not scored)."""
    histories = data.simulated(p, seed)
    tx = histories["transactions"]
    times = tx["event_time_ms"].to_numpy()
    parts = split.masks(times)
    if handbook:
        cards = np.asarray(tx["card_token"].to_numpy(zero_copy_only=False), dtype=str)
        parts["test"] &= split.known_positive_filter(times, cards, tx["is_fraud"].to_numpy())
    rows = parts["validation"] | parts["train"] | parts["test"]
    spine = tx.filter(pa.array(rows))
    fs = feature_set or fraud_feature_set()
    table = fs.offline(histories, spine)
    x = np.column_stack([table[n].to_numpy(zero_copy_only=False) for n in fs.names])
    span = (int(times[rows].min()), int(times[rows].max()))
    hour = table["hour_of_day"].to_numpy()
    return Dataset(
        x=x.astype(np.float64),
        y=table["is_fraud"].to_numpy().astype(np.int8),
        names=fs.names,
        parts={k: v[rows] for k, v in parts.items()},
        times=table["event_time_ms"].to_numpy(),
        cards=np.asarray(table["card_token"].to_numpy(zero_copy_only=False), dtype=str),
        scenarios=np.asarray(table["scenario"].to_numpy(zero_copy_only=False), dtype=str),
        lineage={
            "data.profile": p.name,
            "data.seed": str(seed),
            "data.shape": json.dumps([p.customers, p.terminals, p.days]),
            "data.start_ms": str(span[0]),
            "data.end_ms": str(span[1]),
            **{f"features.{v.name}": v.version for v in fs.views},
            "features.set": fs.name,
        },
        extra={
            "is_night": (hour <= 6).astype(np.float64),
            "card__amount_mean_7d": _ratio(
                table["card__amount_sum_7d"].to_numpy(), table["card__count_7d"].to_numpy()
            ),
        },
    )


def ulb_dataset() -> Dataset:
    """The ULB data, time-ordered: the first 80 % trains the model, the last 20 % tests
    it. The operating threshold is chosen on 70-80 % by a model fitted on the first 70 %."""
    table = ulb.load()
    time_s = table["Time"].to_numpy().astype(np.float64)
    order = np.argsort(time_s, kind="stable")
    names = [c for c in table.column_names if c != "Class"]
    x = np.column_stack([table[c].to_numpy().astype(np.float64)[order] for c in names])
    x = np.column_stack([x, (time_s[order] % 86_400) / 3_600])
    n = len(order)
    idx = np.arange(n)
    return Dataset(
        x=x,
        y=table["Class"].to_numpy()[order].astype(np.int8),
        names=[*names, "hour_of_day"],
        parts={
            "validation": (idx >= int(n * 0.7)) & (idx < int(n * 0.8)),
            "train": idx < int(n * 0.7),
            "test": idx >= int(n * 0.8),
        },
        times=(time_s[order] * 1000).astype(np.int64),
        lineage={"data.source": "ulb", "data.md5": ulb.MD5, "data.rows": str(n)},
    )


def _ratio(num: npt.NDArray[np.float64], den: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
