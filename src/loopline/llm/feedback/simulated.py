"""A simulated user, for the demo and the benchmark: it asks questions and gives
feedback by a stated preference. It is a simulator, not people: no user data of this
kind ships offline, and a stated rule makes the A/B result checkable.

The preference: **brief, finished answers**. An answer is liked when it ends by itself
(not cut at ``max_tokens``) with ``min_words`` to ``max_words`` words; of two answers, a
finished one beats one cut off, and of two finished ones the one with fewer words wins;
an answer under ``min_words`` (nothing, or a word) loses to any other. Small models
ramble, so the rule has room to move, and a LoRA adapter learns it from a few dozen
judgements. (Without the floor, DPO found the rule's loophole at once: the adapter
learned to answer nothing, which has the fewest words.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

TOPICS = (
    "photosynthesis", "the moon", "volcanoes", "rainbows", "gravity", "honey bees", "tides",
    "the heart", "electricity", "clouds", "magnets", "earthquakes", "vaccines", "glaciers",
    "coral reefs", "the internet", "batteries", "sound", "deserts", "comets", "bread",
    "coffee", "chess", "the piano", "bicycles", "maps", "seeds", "owls", "whales", "salt",
    "paper", "glass", "bridges", "rivers", "snow", "wind", "ants", "mushrooms", "lightning",
    "compasses",
)  # fmt: skip
ASKS = (
    "What is {}?", "Tell me about {}.", "Explain {} to a child.", "Why does {} matter?",
    "Give me one fact about {}.", "How does {} work?",
)  # fmt: skip


def prompts(n: int, *, seed: int = 0) -> list[str]:
    """``n`` distinct questions (topic and phrasing drawn without repeats)."""
    rng = random.Random(seed)
    pairs = [(a, t) for a in ASKS for t in TOPICS]
    rng.shuffle(pairs)
    if n > len(pairs):
        raise ValueError(f"at most {len(pairs)} distinct prompts")
    return [a.format(t) for a, t in pairs[:n]]


@dataclass(frozen=True)
class BriefUser:
    """The simulated user (see the module)."""

    min_words: int = 3
    max_words: int = 30

    def score(self, text: str, finish_reason: str | None) -> float:
        """Higher is better: an answer at all, finished, then fewer words."""
        words = len(text.split())
        if words < self.min_words:
            return -1000.0
        return (0.0 if finish_reason == "length" else 1000.0) - words

    def likes(self, text: str, finish_reason: str | None) -> bool:
        words = len(text.split())
        return finish_reason != "length" and self.min_words <= words <= self.max_words

    def prefers(self, a: tuple[str, str | None], b: tuple[str, str | None]) -> int:
        """1 if ``a`` wins, -1 if ``b`` does, 0 for a tie."""
        sa, sb = self.score(*a), self.score(*b)
        return (sa > sb) - (sa < sb)
