"""The HTML report of ``loopline demo moderation``: quality per category, language, modality
and obfuscation beside the profanity-list baselines, the false-positive rate on benign texts
about sensitive topics, the cascade's shares and cost, the review queue, and the latency of
the service's answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from loopline.apps.moderation.taxonomy import CATEGORIES
from loopline.reports import table, write_page
from loopline.training import svg


def write(
    path: Path, *, summary: Mapping[str, Any], compared: Mapping[str, Any],
    latencies_ms: Mapping[str, Sequence[float]], review: Mapping[str, Any],
    costs: Mapping[str, float], recalibration: Mapping[str, Any], notes: Sequence[str] = (),
) -> Path:  # fmt: skip
    q = compared["all"]
    return write_page(
        path,
        title="loopline demo moderation: cascade, regional policy, human review",
        summary=summary,
        notes=[
            "The evaluation set is built by this project (docs/moderation-evalset.md): "
            "template texts in 12 languages, obfuscated variants, texts drawn into images, "
            "spoken by espeak-ng and put into videos. The reviewers are simulated.",
            *notes,
        ],
        sections=[
            ("Quality per category (text items, beside the baselines)", _categories(compared)),
            ("Recall per language", _languages(q["per_language"])),
            ("Per modality and obfuscation", _groups(q)),
            ("False positives on benign texts about sensitive topics", _sensitive(compared)),
            ("The cascade: shares and cost", _cascade(q["stages"], costs)),
            ("Latency of the service's answers", _latency(latencies_ms)),
            ("Review queue", table(sorted(review.items()))),
            ("Recalibration from reviewers' verdicts", table(sorted(recalibration.items()))),
        ],
    )


def _categories(compared: Mapping[str, Any]) -> str:
    ours = compared["text"]["per_category"]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    x = np.arange(len(CATEGORIES))
    ax.bar(x - 0.2, [ours[c]["precision"] for c in CATEGORIES], 0.4, label="precision")
    ax.bar(x + 0.2, [ours[c]["recall"] for c in CATEGORIES], 0.4, label="recall")
    ax.set_xticks(x, CATEGORIES)
    ax.set(ylim=(0, 1.05), ylabel="ours, text items")
    ax.legend(fontsize=8)
    rows = [("ours, at the operating point", *(compared["text"]["overall"][k] for k in _RATES))]
    if "policy_text" in compared:
        rows.append(("ours, as the service acted (any action but allow)",
                     *(compared["policy_text"][k] for k in _RATES)))  # fmt: skip
    rows += [(name, *(r[k] for k in _RATES)) for name, r in compared["baselines"].items()]
    rows.append(("ours, English items", *(compared["english"]["overall"][k] for k in _RATES)))
    rows += [(f"{name}, English items", *(r[k] for k in _RATES))
             for name, r in compared["english_baselines"].items()]  # fmt: skip
    return svg(fig) + table(rows, header=("text items", *_RATES))


_RATES = ("precision", "recall", "false_positive_rate", "items")


def _languages(per_language: Mapping[str, Mapping[str, float]]) -> str:
    names = sorted(per_language)
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.bar(names, [per_language[n]["recall"] for n in names], color="#4a7")
    ax.set(ylim=(0, 1.05), ylabel="recall")
    rows = [(n, *(per_language[n][k] for k in _RATES)) for n in names]
    return svg(fig) + table(rows, header=("language", *_RATES))


def _groups(q: Mapping[str, Any]) -> str:
    rows = [("modality", g, *(r[k] for k in _RATES)) for g, r in q["per_modality"].items()]
    rows += [("variant", g, *(r[k] for k in _RATES)) for g, r in q["per_variant"].items()]
    return table(rows, header=("by", "group", *_RATES))


def _sensitive(compared: Mapping[str, Any]) -> str:
    ours = compared["text"]["sensitive_benign_fpr"]
    rows = [(kind, rate) for kind, rate in ours.items()]
    rows += [
        (f"all, {name}", r["sensitive_benign_fpr"]) for name, r in compared["baselines"].items()
    ]
    return table(rows, header=("benign kind (ours unless named)", "false-positive rate"))


def _cascade(stages: Mapping[str, Any], costs: Mapping[str, float]) -> str:
    rows = [(s, v.get("share", ""), v.get("mean_ms", ""), v.get("items", ""))
            for s, v in stages.items() if isinstance(v, dict)]  # fmt: skip
    rows.append(("decided by a list", stages["decided_by_list"], "", ""))
    return table(rows, header=("stage", "share of items reaching it", "mean ms", "items")) + table(
        sorted(costs.items())
    )


def _latency(latencies_ms: Mapping[str, Sequence[float]]) -> str:
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for name, values in latencies_ms.items():
        if len(values):
            v = np.asarray(values)
            ax.hist(v, bins=50, alpha=0.55, label=f"{name}: p50 {np.percentile(v, 50):.1f}, "
                    f"p99 {np.percentile(v, 99):.1f} ms ({len(v)})")  # fmt: skip
    ax.axvline(500, color="crimson", ls="--", label="budget 500 ms")
    ax.set(xlabel="request to answer (ms), over HTTP", ylabel="items", yscale="log")
    ax.legend(fontsize=8)
    return svg(fig)
