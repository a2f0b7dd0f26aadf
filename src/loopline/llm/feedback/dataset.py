"""Training examples from feedback: the completions in the prediction log joined to the
labels ``/v1/feedback`` left beside them (see :mod:`loopline.llm.server.feedback`).

A rating makes a KTO example (prompt, completion, desirable or not); a preference
makes a DPO pair (prompt, chosen, rejected) when both answers are logged and answer the
same prompt. The newest ``max_examples`` of each are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loopline.predictions import Outcomes


@dataclass(frozen=True)
class Examples:
    ratings: list[dict[str, Any]] = field(default_factory=list)  # prompt, completion, label
    pairs: list[dict[str, str]] = field(default_factory=list)  # prompt, chosen, rejected

    def summary(self) -> dict[str, int]:
        up = sum(r["label"] for r in self.ratings)
        return {"ratings": len(self.ratings), "up": up, "down": len(self.ratings) - up,
                "pairs": len(self.pairs)}  # fmt: skip


def examples(log: Outcomes, *, decided_from_ms: int = 0, max_examples: int = 10_000) -> Examples:
    """The rated completions and preference pairs decided since ``decided_from_ms``."""
    joined = log.joined(decided_from_ms=decided_from_ms)
    logged = {
        rid: out for rid, out in zip(joined.request_ids, joined.outputs, strict=True)
        if "completions" in out
    }  # fmt: skip
    ratings: list[dict[str, Any]] = []
    pairs: list[dict[str, str]] = []
    for rid, labels in zip(joined.request_ids, joined.labels, strict=True):
        out = logged.get(rid)
        if out is None:
            continue
        for subject, value in sorted(labels.items()):
            kind, _, rest = subject.partition(":")
            if kind == "rating":
                text = _answer(out, rest)
                if text is not None:
                    ratings.append({"prompt": out["prompt"], "completion": text,
                                    "label": value >= 0.5})  # fmt: skip
            elif kind == "over":
                choice, other, other_choice = rest.split(":")
                loser = logged.get(other)
                chosen = _answer(out, choice)
                rejected = None if loser is None else _answer(loser, other_choice)
                same_prompt = loser is not None and loser["prompt"] == out["prompt"]
                if (
                    chosen is not None
                    and rejected is not None
                    and same_prompt
                    and chosen != rejected
                ):
                    pairs.append({"prompt": out["prompt"], "chosen": chosen, "rejected": rejected})
    return Examples(ratings[-max_examples:], pairs[-max_examples:])


def _answer(out: dict[str, Any], choice: str) -> str | None:
    """A logged completion's choice (None: no such choice)."""
    completions = out["completions"]
    index = int(choice) if choice.isdigit() else -1
    return str(completions[index]) if 0 <= index < len(completions) else None
