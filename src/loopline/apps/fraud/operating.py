"""The fraud model at an operating point, scenario by scenario (``loopline bench quality``).

Two ways to read a scenario's quality, both on the test period:

* **its own curve**: the scenario's frauds against *all* genuine traffic (the other
  scenarios' frauds left out), through :func:`loopline.training.ranking`: the recall
  reached at precision 0.99 and the precision at recall 0.95. A small scenario pays for
  its rarity here: 0.99 precision allows one false alarm per 99 of *its* frauds.
* **at a global threshold**: the share of the scenario's frauds flagged by one threshold
  over all traffic (:func:`by_scenario`'s ``thresholds``). At the threshold chosen on the
  validation days for precision 0.99 (or recall 0.95) this is what the deployed model
  catches of it; at the threshold that gives the test period itself that precision it
  is the test curve's reading, which no deployed model could choose.

Also here: the data set with the extended features (:func:`risk_dataset`), the traffic
segments the per-segment thresholds use (:func:`segments`), and how many of a
scenario's frauds had any label evidence when they were scored (:func:`label_evidence`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from loopline.apps.fraud.datasets import Dataset, simulated_dataset
from loopline.apps.fraud.features import risk_feature_set
from loopline.apps.fraud.simulator import Profile
from loopline.training import TimeSplit, ranking

F64 = npt.NDArray[np.float64]


def risk_dataset(p: Profile, split: TimeSplit, seed: int) -> Dataset:
    """Simulate, then compute :func:`risk_feature_set` (the served set's 44 features and
    9 more) offline for the split's validation, train and test rows."""
    return simulated_dataset(p, split, seed, feature_set=risk_feature_set())


def by_scenario(
    y: npt.NDArray[np.integer],
    p: F64,
    scenarios: npt.NDArray[np.str_],
    thresholds: Mapping[str, float],
) -> dict[str, dict[str, float]]:
    """Per fraud scenario: its frauds, its own curve against all genuine rows (recall at
    precision 0.99, precision at recall 0.95, average precision), and the recall of its
    frauds at each of ``thresholds`` (name -> score; flagged: ``p >= score``)."""
    out: dict[str, dict[str, float]] = {}
    for name in sorted(set(scenarios[y == 1].tolist())):
        mine = (scenarios == name) & (y == 1)
        own = mine | (y == 0)
        curve = ranking(y[own], p[own])
        out[name] = {
            "frauds": int(mine.sum()),
            "recall_at_precision_99": curve["recall_at_precision_99"],
            "precision_at_recall_95": curve["precision_at_recall_95"],
            "average_precision": curve["average_precision"],
            **{f"recall_at_{k}": float((p[mine] >= t).mean()) for k, t in thresholds.items()},
        }
    return out


def flagged_by_scenario(
    flagged: npt.NDArray[np.bool_], y: npt.NDArray[np.integer], scenarios: npt.NDArray[np.str_]
) -> dict[str, float]:
    """Precision and recall of ``flagged`` rows, and the recall of each fraud scenario."""
    tp = int((flagged & (y == 1)).sum())
    out = {
        "precision": tp / max(1, int(flagged.sum())),
        "recall": tp / max(1, int((y == 1).sum())),
        "flagged": int(flagged.sum()),
    }
    for name in sorted(set(scenarios[y == 1].tolist())):
        mine = (scenarios == name) & (y == 1)
        out[f"recall_{name}"] = float(flagged[mine].mean())
    return out


def amount_edges(amounts: F64, bands: int = 4) -> F64:
    """Amount band edges: the quantiles that cut ``amounts`` (validation rows) into
    ``bands`` bands of equal size."""
    return np.quantile(amounts, np.linspace(0, 1, bands + 1)[1:-1])


def segments(amount: F64, card_not_present: F64, edges: F64) -> npt.NDArray[np.str_]:
    """Each row's segment: its channel and amount band, e.g. ``cnp|2`` (band 2 of
    ``len(edges) + 1``, from :func:`amount_edges`)."""
    band = np.searchsorted(edges, amount, side="right")
    channel = np.where(card_not_present > 0.5, "cnp", "cp")
    return np.char.add(np.char.add(channel, "|"), band.astype(str))


def label_evidence(
    ds: Dataset, rows: npt.NDArray[np.bool_]
) -> tuple[dict[str, dict[str, float]], float]:
    """Per fraud scenario among ``rows``: the share of its frauds scored after a fraud
    label had arrived for their terminal, or for their card, in the 30 days before; and
    the recall ceiling left by terminal-compromise frauds without any such label.

    The simulator draws a compromised terminal's frauds from the genuine generator, so
    before its first chargeback arrives nothing tells them from genuine traffic: a model
    that keeps its precision far above the base rate cannot catch them, and recall
    cannot exceed ``1 - those / all frauds``."""
    col = {n: i for i, n in enumerate(ds.names)}
    x = np.nan_to_num(ds.x[rows])
    terminal = x[:, col["terminal_risk__is_fraud_mean_30d"]] > 0
    card = x[:, col["card_risk__is_fraud_sum_30d"]] > 0
    y = ds.y[rows]
    assert ds.scenarios is not None
    scenario = ds.scenarios[rows]
    out = {}
    for name in sorted(set(scenario[y == 1].tolist())):
        mine = (scenario == name) & (y == 1)
        out[name] = {
            "frauds": int(mine.sum()),
            "terminal_fraud_label_seen": float(terminal[mine].mean()),
            "card_fraud_label_seen": float(card[mine].mean()),
        }
    blind = int(((scenario == "terminal") & (y == 1) & ~terminal).sum())
    return out, 1 - blind / max(1, int(y.sum()))
