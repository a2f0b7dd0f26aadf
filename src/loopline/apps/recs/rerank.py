"""Re-ranking and exploration: what turns a ranked list into the page a user sees.

- **Already seen**: items in the user's history or shown-and-clicked this session go.
- **Diversity**: maximal marginal relevance (Carbonell and Goldstein 1998): each slot
  takes the item maximising ``lambda * relevance - (1 - lambda) * max similarity`` to
  the items already placed (similarity: cosine of the items' genre vectors).
- **Business rules**: at most ``max_per_genre`` items sharing a first genre; blocked
  items never shown.
- **Exploration**: Thompson sampling (Beta-Bernoulli per item, on clicks over
  impressions) fills ``explore_slots`` fixed slots from the candidates the page left out
  and from new items, so new and under-shown items earn the evidence they need.
  Its state is bounded: the ``max_arms`` most recently updated items.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class RerankConfig:
    diversity: float = 0.2  # 1 - lambda of MMR; 0 turns it off
    max_per_genre: int = 4
    explore_slots: tuple[int, ...] = (4, 9)  # 0-based positions
    blocked: frozenset[int] = frozenset()


def mmr(
    items: I64,
    relevance: F32,
    similarity: F32,
    k: int,
    diversity: float,
    max_per_group: int,
    group: I64,
) -> I64:
    """Up to ``k`` of ``items`` (best first by ``relevance``), diversified."""
    order = np.argsort(-relevance, kind="stable")
    items, relevance, similarity, group = (
        items[order],
        relevance[order],
        similarity[np.ix_(order, order)],
        group[order],
    )
    rel = (relevance - relevance.min()) / (np.ptp(relevance) + 1e-9) if len(items) else relevance
    chosen: list[int] = []
    worst = np.zeros(len(items), dtype=np.float32)  # max similarity to the chosen
    per_group: dict[int, int] = {}
    free = np.ones(len(items), dtype=bool)
    while len(chosen) < k and free.any():
        value = (1.0 - diversity) * rel - diversity * worst
        value[~free] = -np.inf
        i = int(np.argmax(value))
        free[i] = False
        g = int(group[i])
        if per_group.get(g, 0) >= max_per_group:
            continue
        per_group[g] = per_group.get(g, 0) + 1
        chosen.append(i)
        worst = np.maximum(worst, similarity[i])
    return items[np.asarray(chosen, dtype=np.int64)] if chosen else items[:0]


class Thompson:
    """Beta(1 + clicks, 1 + impressions - clicks) per item; bounded state."""

    def __init__(self, *, max_arms: int = 100_000, seed: int = 0) -> None:
        self.max_arms = max_arms
        self._arms: OrderedDict[int, tuple[int, int]] = OrderedDict()
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    def update(self, item: int, *, impressions: int, clicks: int) -> None:
        with self._lock:
            n, c = self._arms.pop(item, (0, 0))
            self._arms[item] = (n + impressions, c + clicks)
            while len(self._arms) > self.max_arms:
                self._arms.popitem(last=False)

    def pick(self, pool: Sequence[int], n: int) -> list[int]:
        """``n`` items of ``pool`` by sampled click rates, best first."""
        if not len(pool) or n <= 0:
            return []
        with self._lock:
            stats = np.array([self._arms.get(int(i), (0, 0)) for i in pool], dtype=np.float64)
            theta = self._rng.beta(1.0 + stats[:, 1], 1.0 + stats[:, 0] - stats[:, 1])
        top = np.argsort(-theta, kind="stable")[:n]
        return [int(pool[i]) for i in top]

    def __len__(self) -> int:
        return len(self._arms)


@dataclass(frozen=True, slots=True)
class Page:
    """What a user sees: items, and which of them exploration placed."""

    items: I64
    explored: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Genres:
    """Items' genre vectors as re-ranking uses them: unit length (MMR's similarity) and
    each item's first genre (the per-genre cap)."""

    unit: F32
    first: I64

    @classmethod
    def of(cls, genres: F32) -> Genres:
        norms = np.linalg.norm(genres, axis=1, keepdims=True)
        return cls(
            unit=np.asarray(genres / np.maximum(norms, 1e-9), dtype=np.float32),
            first=np.asarray(np.argmax(genres > 0, axis=1), dtype=np.int64),
        )


def page(
    items: I64,
    scores: F32,
    k: int,
    *,
    genres: Genres,
    config: RerankConfig,
    bandit: Thompson | None = None,
    fresh: Sequence[int] = (),
    blocked: I64 | None = None,
) -> Page:
    """Re-rank ranked candidates into up to ``k`` slots: blocked items out, MMR diversity
    and the per-genre cap, exploration slots from what was left out and ``fresh`` (new)
    items picked by Thompson sampling, then the best of the rest where the cap left slots
    empty."""
    out_of_bounds = np.fromiter(config.blocked, dtype=np.int64)
    if blocked is not None:
        out_of_bounds = np.concatenate([out_of_bounds, blocked])
    keep = ~np.isin(items, out_of_bounds)
    items, scores = items[keep], np.asarray(scores[keep], dtype=np.float32)
    unit = genres.unit[items]
    slots = [s for s in config.explore_slots if s < k] if bandit is not None else []
    chosen = mmr(
        items, scores, unit @ unit.T, k - len(slots), config.diversity, config.max_per_genre,
        genres.first[items],
    ).tolist()  # fmt: skip
    taken = set(chosen)
    left = [int(i) for i in items[np.argsort(-scores, kind="stable")] if int(i) not in taken]
    out, explored = list(chosen), [False] * len(chosen)
    if slots and bandit is not None:
        barred = set(out_of_bounds.tolist()) | taken
        pool = [i for i in dict.fromkeys([*left, *map(int, fresh)]) if i not in barred]
        for slot, item in zip(slots, bandit.pick(pool, len(slots)), strict=False):
            out.insert(min(slot, len(out)), item)
            explored.insert(min(slot, len(explored)), True)
    for item in left:  # the per-genre cap or too few candidates left slots empty
        if len(out) >= k:
            break
        if item not in out:
            out.append(item)
            explored.append(False)
    return Page(np.asarray(out[:k], dtype=np.int64), np.asarray(explored[:k], dtype=bool))
