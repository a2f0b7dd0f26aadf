"""A SIMULATOR of human reviewers, for the demo and the benchmark: no person judges
anything here, and figures measured with it are the simulation's, reported as such.

Each simulated reviewer gets an item's true label right with their accuracy for that
label (0.90-0.97 drawn per label, seniors 0.95-0.99) and otherwise says a similar
category (harassment for hate, self-harm for violence, ...; 70 % of the errors) or any
other label. Each takes an exponentially distributed time per verdict (their own mean),
so queues build up and deadlines are missed. Simulated users appeal a share of the final
verdicts that are wrong. Everything is drawn from one seeded generator: the same seed
and the same queue give the same run.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from loopline.apps.moderation.review import ReviewQueue
from loopline.apps.moderation.taxonomy import LABELS

# the label a reviewer mistakes each label for most often
CONFUSABLE: Mapping[str, str] = {
    "harassment": "hate", "hate": "harassment", "violence": "self_harm",
    "self_harm": "violence", "sexual": "benign", "spam": "benign", "benign": "harassment",
}  # fmt: skip
_SIMILAR_SHARE = 0.7  # of a reviewer's errors, those that pick the confusable label


@dataclass(frozen=True, slots=True)
class SimulatedReviewer:
    name: str
    accuracy: Mapping[str, float]  # P(right label | true label)
    mean_s: float  # mean seconds per verdict
    senior: bool = False


@dataclass(frozen=True, slots=True)
class SimulationReport:
    """What one :meth:`SimulatedReviewers.work` run did."""

    verdicts: int
    correct: int  # verdicts equal to the true label
    idle: int  # claims that found no task
    appeals: int  # appeals filed by simulated users
    final_accuracy: float | None  # labels in force equal to the truth
    end: float  # the simulated clock when the run stopped


def roster(rng: random.Random, *, juniors: int = 4, seniors: int = 2) -> list[SimulatedReviewer]:
    """A team of simulated reviewers with accuracies and speeds drawn from ``rng``."""
    team = []
    for i in range(juniors + seniors):
        senior = i >= juniors
        low, high = (0.95, 0.99) if senior else (0.90, 0.97)
        accuracy = {label: rng.uniform(low, high) for label in LABELS}
        mean_s = rng.uniform(60.0, 150.0) if senior else rng.uniform(30.0, 120.0)
        name = f"sim-{'senior' if senior else 'reviewer'}-{i + 1}"
        team.append(SimulatedReviewer(name, accuracy, mean_s, senior))
    return team


class SimulatedReviewers:
    """Simulated reviewers working through a :class:`ReviewQueue` (a simulation).

    Args:
        truth: The true label of every item that can reach the queue.
        seed: Seeds every draw (team, errors, times, appeals).
        reviewers: The team; :func:`roster` (4 reviewers, 2 seniors) when ``None``.
        appeal_rate: The share of wrong final verdicts the simulated users appeal.
        idle_s: How long a reviewer who found no task waits before claiming again.
    """

    def __init__(
        self, truth: Mapping[str, str], *, seed: int = 0,
        reviewers: Sequence[SimulatedReviewer] | None = None, appeal_rate: float = 0.5,
        idle_s: float = 60.0,
    ) -> None:  # fmt: skip
        self.truth = truth
        self.seed = seed
        self.appeal_rate = appeal_rate
        self.idle_s = idle_s
        self._rng = random.Random(seed)
        self.reviewers = list(reviewers) if reviewers is not None else roster(self._rng)

    def judge(self, reviewer: SimulatedReviewer, item_id: str) -> str:
        """``reviewer``'s (simulated) verdict on an item."""
        if item_id not in self.truth:
            raise KeyError(f"The simulation has no true label for item {item_id!r}.")
        true = self.truth[item_id]
        if self._rng.random() < reviewer.accuracy.get(true, 0.0):
            return true
        if self._rng.random() < _SIMILAR_SHARE:
            return CONFUSABLE[true]
        return self._rng.choice([label for label in LABELS if label != true])

    def work(self, queue: ReviewQueue, *, steps: int, start: float) -> SimulationReport:
        """Run ``steps`` events (a claim or a verdict each) from simulated time ``start``.

        Reviewers act in time order; a verdict lands ``mean_s``-ish after its claim (cut
        below the queue's lease, so no lease lapses under a working reviewer).
        """
        # (time, order, reviewer, task id or -1 for a claim, label, whether it is right)
        events = [(start, i, i, -1, "", False) for i in range(len(self.reviewers))]
        order = len(events)
        verdicts = correct = idle = appeals = 0
        seen, t = start, start
        appealed: set[str] = set()
        for _ in range(steps):
            if not events:
                break
            t, _, who, task_id, label, right = heapq.heappop(events)
            reviewer = self.reviewers[who]
            if task_id >= 0:
                queue.verdict(task_id, reviewer.name, label, now=t)
                verdicts += 1
                correct += right
                appeals_now, seen = self._appeal(queue, seen, appealed)
                appeals += appeals_now
                nxt = (t, order, who, -1, "", False)
            elif (task := queue.claim(reviewer.name, senior=reviewer.senior, now=t)) is None:
                idle += 1
                nxt = (t + self.idle_s, order, who, -1, "", False)
            else:
                label = self.judge(reviewer, task.item_id)
                right = label == self.truth[task.item_id]
                took = min(self._rng.expovariate(1.0 / reviewer.mean_s), 0.9 * queue.lease_s)
                nxt = (t + took, order, who, task.id, label, right)
            heapq.heappush(events, nxt)
            order += 1
        in_force = queue.labels(limit=len(self.truth) + 1)
        agree = sum(label == self.truth.get(item) for item, label, _ in in_force)
        accuracy = agree / len(in_force) if in_force else None
        return SimulationReport(verdicts, correct, idle, appeals, accuracy, t)

    def _appeal(self, queue: ReviewQueue, seen: float, appealed: set[str]) -> tuple[int, float]:
        """File appeals against wrong verdicts made final since ``seen``; (how many, the
        latest decision time seen)."""
        filed = 0
        for item_id, label, at in queue.labels(since=seen):
            seen = max(seen, at)
            wrong = label != self.truth[item_id]
            if wrong and item_id not in appealed and self._rng.random() < self.appeal_rate:
                appealed.add(item_id)
                filed += queue.appeal(item_id, "simulated appeal", now=at) is not None
        return filed, seen
