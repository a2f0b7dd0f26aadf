"""Quality on the evaluation set: precision, recall and false-positive rate at the operating
point, overall and per category, language, modality and obfuscation, the false-positive rate
on benign texts about sensitive topics, and the profanity-list baselines on the same texts.

An item is flagged when its fused probability of being harmful (of any category) reaches
the operating threshold; for a category's figures, an item counts for the category it is
labelled with, and is found when it is flagged and that category is its likeliest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.apps.moderation.cascade import Assessment
from loopline.apps.moderation.taxonomy import CATEGORIES


@dataclass(frozen=True)
class Rates:
    precision: float
    recall: float
    false_positive_rate: float
    items: int

    @classmethod
    def of(cls, flagged: Sequence[bool], harmful: Sequence[bool]) -> Rates:
        f, h = np.asarray(flagged, bool), np.asarray(harmful, bool)
        tp, fp = int((f & h).sum()), int((f & ~h).sum())
        return cls(
            round(tp / max(int(f.sum()), 1), 4), round(tp / max(int(h.sum()), 1), 4),
            round(fp / max(int((~h).sum()), 1), 4), len(f),
        )  # fmt: skip


def flagged_categories(a: Assessment, threshold: float) -> set[str]:
    """The category an item is flagged with (its likeliest), if it is flagged at all."""
    return {max(a.scores, key=a.scores.__getitem__)} if a.harmful >= threshold else set()


def quality(items: Sequence[Any], found: Sequence[Assessment], threshold: float) -> dict[str, Any]:
    """Every figure of the report, for evaluation ``items`` and their assessments."""
    flags = [flagged_categories(a, threshold) for a in found]
    harmful = [i.label != "benign" for i in items]
    flagged = [bool(f) for f in flags]
    out: dict[str, Any] = {"overall": Rates.of(flagged, harmful).__dict__}
    pairs = list(zip(flags, items, strict=True))
    out["per_category"] = {
        c: {
            "recall": _share([c in f for f, i in pairs if i.label == c]),
            "precision": _share([i.label == c for f, i in pairs if c in f]),
            "items": sum(i.label == c for i in items),
        }
        for c in CATEGORIES
    }
    out["per_language"] = _grouped(items, flagged, harmful, lambda i: i.language)
    out["per_modality"] = _grouped(items, flagged, harmful, lambda i: i.modality)
    out["per_variant"] = _grouped(items, flagged, harmful, lambda i: i.variant)
    sensitive = [(f, i.kind) for f, i in zip(flagged, items, strict=True)
                 if i.label == "benign" and i.kind != "benign"]  # fmt: skip
    out["sensitive_benign_fpr"] = {
        kind: _share([f for f, k in sensitive if k == kind])
        for kind in sorted({k for _, k in sensitive})
    }
    out["sensitive_benign_fpr"]["all"] = _share([f for f, _ in sensitive])
    out["stages"] = _stages(found)
    return out


def _share(xs: Sequence[bool]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def _grouped(
    items: Sequence[Any], flagged: Sequence[bool], harmful: Sequence[bool],
    key: Callable[[Any], str],
) -> dict[str, dict[str, Any]]:  # fmt: skip
    groups: dict[str, list[int]] = defaultdict(list)
    for n, item in enumerate(items):
        groups[key(item)].append(n)
    return {
        g: Rates.of([flagged[n] for n in ns], [harmful[n] for n in ns]).__dict__
        for g, ns in sorted(groups.items())
    }


def _stages(found: Sequence[Assessment]) -> dict[str, Any]:
    """Each stage's share of items (the share that reached it) and its mean time."""
    n = max(len(found), 1)
    reached = {
        "list": len(found),
        "fast": sum(a.stage != "list" for a in found),
        "thorough": sum(a.stage == "thorough" for a in found),
    }
    out: dict[str, Any] = {s: {"share": round(k / n, 4)} for s, k in reached.items()}
    for stage in ("list", "fast", "thorough", "image", "ocr", "speech"):
        times = [a.timings_ms[stage] for a in found if stage in a.timings_ms]
        out.setdefault(stage, {})["mean_ms"] = round(float(np.mean(times)), 3) if times else 0.0
        out[stage]["items"] = len(times)
    out["decided_by_list"] = round(sum(bool(a.hits) for a in found) / n, 4)
    return out


def best_threshold(
    scores: npt.NDArray[Any], harmful: npt.NDArray[np.bool_],
    candidates: Iterable[float] = np.arange(0.2, 0.96, 0.025),
) -> float:  # fmt: skip
    """The candidate threshold with the best F1 of "harmful in some category"."""
    best, at = -1.0, 0.5
    for t in candidates:
        flagged = scores >= t
        tp = float((flagged & harmful).sum())
        f1 = 2 * tp / max(float(flagged.sum() + harmful.sum()), 1.0)
        if f1 > best:
            best, at = f1, float(t)
    return round(at, 3)


def baselines(texts: Sequence[str], harmful: Sequence[bool]) -> dict[str, list[bool]]:
    """The profanity-list baselines' flags: ``better-profanity``'s word list (with its own
    leetspeak variants), and ``alt-profanity-check``'s linear model at its own 0.5 and at
    the threshold that gives it its best F1 on these very items (chosen with the labels:
    the baseline's best case, not a fair operating point)."""
    from better_profanity import profanity
    from profanity_check import predict_prob

    profanity.load_censor_words()
    probs = np.asarray(predict_prob(list(texts)) if texts else [], dtype=np.float64)
    at = best_threshold(probs, np.asarray(harmful, bool), np.unique(np.round(probs, 3)))
    return {
        "better-profanity": [bool(profanity.contains_profanity(t)) for t in texts],
        "alt-profanity-check": [bool(p >= 0.5) for p in probs],
        f"alt-profanity-check (best F1, >= {at:.3f})": [bool(p >= at) for p in probs],
    }
