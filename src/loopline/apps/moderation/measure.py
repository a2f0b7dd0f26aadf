"""The figures of the benchmark, the demo and ``train moderation``: quality on the evaluation
set beside the profanity-list baselines, latency on one core, and the cascade's cost.

Cost per 1,000 items = the CPU time the cascade spent per item, priced per core-hour, plus
the share sent to people times the price of one review. Both prices are parameters with
stated defaults, not measurements: :data:`CORE_HOUR_USD` is of the order of an on-demand
cloud vCPU-hour, :data:`REVIEW_USD` an assumed cost of one human review.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from loopline.apps.moderation.cascade import Assessment, Cascade, Content
from loopline.apps.moderation.evaluate import Rates, baselines, quality
from loopline.edge import pinned

if TYPE_CHECKING:
    from loopline.apps.moderation.evalset import Item

CORE_HOUR_USD = 0.05
REVIEW_USD = 0.10
Say = Callable[[str], None]


def assess_items(
    cascade: Cascade, items: Sequence[Item], *, batch: int = 64, say: Say | None = None
) -> list[Assessment]:
    """The cascade's assessment of each item (texts in batches, media one by one)."""
    from loopline.apps.moderation.pipeline import content_of

    out: list[Assessment] = []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        out.extend(cascade.assess([content_of(i) for i in chunk]))
        if say is not None and (start // batch) % 5 == 0:
            say(f"  assessed {len(out)}/{len(items)} items")
    return out


def text_quality(cascade: Cascade, threshold: float, *, per_cell: int = 6) -> dict[str, float]:
    """Precision, recall and false-positive rate on the evaluation set's plain texts."""
    from loopline.apps.moderation.evalset import evaluation_set

    items = [i for i in evaluation_set(per_cell=per_cell, media=False) if i.variant == "plain"]
    q = quality(items, assess_items(cascade, items), threshold)["overall"]
    return {f"eval_{k}": float(v) for k, v in q.items()}


def compare(
    items: Sequence[Item], found: Sequence[Assessment], threshold: float,
    actions: Sequence[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Quality of ours and of the baselines on the text items (what both are given; the
    baselines read English word lists, so the English items are compared apart too), of
    ours on every item, and, given each item's policy ``actions``, of the service's own
    rule (flagged: any action but ``allow``)."""
    texts = [n for n, i in enumerate(items) if i.modality == "text"]
    english = [n for n in texts if items[n].language == "en"]
    out: dict[str, Any] = {
        "all": quality(items, found, threshold),
        "text": quality([items[n] for n in texts], [found[n] for n in texts], threshold),
        "english": quality([items[n] for n in english], [found[n] for n in english], threshold),
    }
    for name, subset in (("baselines", texts), ("english_baselines", english)):
        harmful = [items[n].label != "benign" for n in subset]
        flags = baselines([items[n].text for n in subset], harmful)
        out[name] = {b: Rates.of(f, harmful).__dict__ for b, f in flags.items()}
        sensitive = [k for k, n in enumerate(subset)
                     if items[n].label == "benign" and items[n].kind != "benign"]  # fmt: skip
        for b, f in flags.items():
            out[name][b]["sensitive_benign_fpr"] = round(
                sum(f[k] for k in sensitive) / max(len(sensitive), 1), 4
            )
    if actions is not None:
        acted = [a != "allow" for a in actions]
        truth = [i.label != "benign" for i in items]
        out["policy"] = Rates.of(acted, truth).__dict__
        out["policy_text"] = Rates.of([acted[n] for n in texts], [truth[n] for n in texts]).__dict__
    return out


def latency(
    cascade: Cascade, contents: Sequence[Content], *, core: int | None = 0, warm: int = 5
) -> dict[str, float]:
    """Each item alone through the cascade on one core: p50, p99 and items per second."""
    with pinned(core):
        for c in contents[:warm]:
            cascade.assess([c])
        times = []
        started = time.perf_counter()
        for c in contents:
            t = time.perf_counter()
            cascade.assess([c])
            times.append((time.perf_counter() - t) * 1e3)
        total = time.perf_counter() - started
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
        "items_per_s": round(len(times) / total, 1),
        "items": float(len(times)),
    }


def costs(
    found: Sequence[Assessment], review_share: float, *, core_hour_usd: float = CORE_HOUR_USD,
    review_usd: float = REVIEW_USD,
) -> dict[str, float]:  # fmt: skip
    """CPU milliseconds per item and the cost of 1,000 items (machines, then people)."""
    cpu_ms = float(np.mean([sum(a.timings_ms.values()) for a in found])) if found else 0.0
    machines = cpu_ms / 3_600_000 * core_hour_usd * 1000
    people = review_share * review_usd * 1000
    return {
        "cpu_ms_per_item": round(cpu_ms, 3),
        "machine_cost_per_1000_items": round(machines, 5),
        "review_cost_per_1000_items": round(people, 4),
        "cost_per_1000_items": round(machines + people, 4),
        "core_hour_usd": core_hour_usd,
        "review_usd": review_usd,
    }
