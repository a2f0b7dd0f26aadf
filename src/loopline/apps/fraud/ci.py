"""Model CI for the fraud model (``loopline ci fraud``): what changed, how a candidate is
trained, the fixed evaluation set and its slices, and the requests the rollout replays.

The fixed evaluation set is simulated, never trained on: the ``full`` profile at the
run's scale (``customers``, ``days``) with the pinned seed :data:`EVAL_SEED` (a world of
its own: other cards, terminals and fraud than any training seed's), its last
:data:`EVAL_DAYS` days, with point-in-time features from the offline engine. Its
SHA-256 (feature matrix and labels) is recorded with every evaluation, so two runs on
the same set say so.

The headline metric is average precision; recall at the precision target (on the set,
and at the model's own decline threshold) is reported beside it. Slices:

- amount: under 10, 10 to 100, 100 and over (card testing lives in the first);
- channel: card present, card not present;
- card history: a light card (fewer than 15 transactions in the 30 days before) or a
  regular one (the simulator's cards all exist from its first day, so "new card"
  means little there; a short history is what a new card looks like to the features);
- each fraud scenario: its frauds among all genuine transactions.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

import loopline.features
import loopline.training
from loopline.apps.fraud import data
from loopline.apps.fraud.features import fraud_feature_set
from loopline.apps.fraud.simulator import START_MS, profile
from loopline.apps.fraud.train import MODEL, TrainOptions, fit, register, sha256
from loopline.exceptions import ConfigError
from loopline.models import ServingModel
from loopline.ops import Candidate, Evaluation, Replay, digest_files, digest_text
from loopline.registry import Registry
from loopline.tasks import AveragePrecision
from loopline.training import BoostingConfig, at_threshold, threshold_for_precision
from loopline.units import DAY_MS

EVAL_SEED = 1_000_003
EVAL_DAYS = 14
HISTORY_DAYS = 30  # before the window: the features' longest one
LIGHT_CARD = 15  # transactions in 30 days
HERE = Path(__file__).resolve().parent
SRC = HERE.parents[2]  # the folder that holds the loopline package


class FraudCi:
    """The fraud application's pieces of model CI (:class:`loopline.ops.ci.CiApplication`).

    Args:
        registry: Where the champion is and the candidate goes.
        seed: The training data's simulation seed (and LightGBM's).
        customers: Simulated customers, for training and for the fixed set.
        days: Simulated days, for training and for the fixed set.
        config: LightGBM hyperparameters (default: the fraud model's).
        precision_target: The precision the decline threshold must reach.
        out: Where the training report goes.
    """

    model = MODEL["simulator"]

    def __init__(
        self,
        *,
        registry: Registry,
        seed: int = 0,
        customers: int = 1000,
        days: int = 90,
        config: BoostingConfig | None = None,
        precision_target: float = 0.9,
        out: Path = Path(".loopline/ci"),
    ) -> None:
        if days < HISTORY_DAYS + EVAL_DAYS + 1:
            raise ConfigError(
                f"--days must be at least {HISTORY_DAYS + EVAL_DAYS + 1}; got {days}."
            )
        self.registry = registry
        self.seed = seed
        self.customers = customers
        self.days = days
        self.config = config or BoostingConfig()
        self.precision_target = precision_target
        self.out = out

    def fingerprint(self) -> dict[str, str]:
        """Training code, feature definitions, data snapshot, hyperparameters."""
        training, features = Path(loopline.training.__file__), Path(loopline.features.__file__)
        views = sorted(f"{v.name}={v.version}" for v in fraud_feature_set().views)
        hyper = {k: v for k, v in dataclasses.asdict(self.config).items() if k != "seed"}
        code = [training.parent, HERE / "train.py", HERE / "datasets.py"]
        simulator = digest_files([HERE / "simulator.py", HERE / "data.py"], SRC)
        scale = ("full", self.seed, self.customers, self.days)
        return {
            "code": digest_files(code, SRC),
            "features": digest_text(
                digest_files([features.parent, HERE / "features.py"], SRC), *views
            ),
            "data": digest_text(simulator, *scale),
            "config": digest_text(json.dumps(hyper, sort_keys=True), self.precision_target),
        }

    def train(self) -> Candidate:
        """Train on the simulated data of ``seed`` (``loopline train fraud``'s code)."""
        options = TrainOptions(
            source="simulator", seed=self.seed, config=self.config, customers=self.customers,
            days=self.days, precision_target=self.precision_target, out=self.out / "models",
            registry=self.registry, progress=False,
        )  # fmt: skip
        trained = fit(options)

        def register_it(tags: Mapping[str, str]) -> int:
            return register(
                options, trained.dataset, trained.config, trained.result, trained.bundle,
                extra_tags=tags, alias=False,
            ).version  # fmt: skip

        r = trained.result
        summary = {
            "rows": r["train_rows"],
            "seed": self.seed,
            "average_precision on its own test days": round(r["average_precision"], 4),
        }
        return Candidate(trained.bundle, register_it, summary)

    @cached_property
    def fixed_set(self) -> pa.Table:
        """The fixed evaluation set's transactions, with their features."""
        p = profile("full", customers=self.customers, days=self.days)
        histories = data.simulated(p, EVAL_SEED)
        tx = histories["transactions"]
        start = START_MS + (p.days - EVAL_DAYS) * DAY_MS
        table = fraud_feature_set().offline(
            histories, tx.filter(pc.greater_equal(tx["event_time_ms"], start))
        )
        if table.num_rows == 0 or pc.sum(table["is_fraud"]).as_py() == 0:
            raise ConfigError("The fixed evaluation set has no fraud: raise --customers.")
        return table

    @cached_property
    def set_sha256(self) -> str:
        names = fraud_feature_set().names
        x = np.column_stack([self._column(n) for n in names]).astype(np.float64)
        return sha256(x.tobytes() + self._labels.tobytes())

    @property
    def set_name(self) -> str:
        t = self.fixed_set
        return (
            f"simulator profile full, seed {EVAL_SEED}, {self.customers} customers x "
            f"{self.days} days, the last {EVAL_DAYS} days ({t.num_rows} transactions, "
            f"{int(self._labels.sum())} frauds)"
        )

    @cached_property
    def _labels(self) -> npt.NDArray[np.int8]:
        return np.asarray(self.fixed_set["is_fraud"].to_numpy(), dtype=np.int8)

    def _column(self, name: str) -> npt.NDArray[Any]:
        return np.asarray(self.fixed_set[name].to_numpy(zero_copy_only=False))

    def inputs(self, model: ServingModel) -> npt.NDArray[np.float64]:
        """The fixed set as ``model``'s input rows (its own columns, in order)."""
        have = set(self.fixed_set.column_names)
        missing = [n for n in model.signature.inputs if n not in have]
        if missing:
            raise ConfigError(
                f"{model.label} takes inputs the current feature set no longer computes: "
                f"{missing}. Train a champion on the current features (`loopline train fraud`)."
            )
        cols = [self._column(n).astype(np.float64) for n in model.signature.inputs]
        return np.column_stack(cols)

    def evaluate(self, model: ServingModel) -> Evaluation:
        """Average precision on the fixed set, overall and per slice."""
        scores, _ = model.predict(self.inputs(model))
        y = self._labels
        metric = AveragePrecision()
        arrays = metric.arrays([{"score": float(s)} for s in scores], [{"": float(v)} for v in y])
        at_target = threshold_for_precision(y, scores, self.precision_target)
        own = at_threshold(y, scores, float(model.signature.meta["threshold"]))
        target = f"{self.precision_target:g}"
        extra = {
            f"recall_at_precision_{target}": at_target.recall,
            "precision_at_threshold": own.precision,
            "recall_at_threshold": own.recall,
        }
        return Evaluation(
            metric, arrays, self.slices(), extra, set_name=self.set_name, set_sha256=self.set_sha256
        )

    def slices(self) -> dict[str, npt.NDArray[np.bool_]]:
        """Slice name -> the fixed set's rows in it (see the module docstring)."""
        amount = self._column("amount")
        channel = np.asarray(self._column("channel"), dtype=str)
        history = self._column("card__count_30d")
        scenario = np.asarray(self._column("scenario"), dtype=str)
        genuine = self._labels == 0
        out = {
            "amount < 10": amount < 10,
            "amount 10-100": (amount >= 10) & (amount < 100),
            "amount >= 100": amount >= 100,
            "card present": channel == "cp",
            "card not present": channel == "cnp",
            f"light card (< {LIGHT_CARD} tx in 30 d)": history < LIGHT_CARD,
            f"regular card (>= {LIGHT_CARD} tx in 30 d)": history >= LIGHT_CARD,
        }
        for name in sorted(set(scenario[~genuine].tolist())):
            out[f"scenario {name}"] = genuine | (scenario == name)
        return out

    def replay(self) -> Replay:
        """The fixed set's transactions, routed by card as the service routes them,
        flagged as the service flags (review or decline)."""
        keys = [str(k) for k in self._column("card_token").tolist()]
        return Replay(keys=keys, inputs=self.inputs, acts=flags)


def flags(model: ServingModel, scores: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Whether each score alone would flag (review or decline), as the service decides
    (:func:`loopline.apps.fraud.pipeline.flags`)."""
    return np.asarray(scores >= float(model.signature.meta["review_threshold"]), dtype=bool)
