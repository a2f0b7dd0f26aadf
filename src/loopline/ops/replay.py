"""The first two stages of a rollout, run on replayed requests: shadow, then canary.

Model CI has no live traffic, so it replays the fixed evaluation set's requests through
a :class:`loopline.serving.Deployment` holding both models, as a service would see them:

- shadow: the champion answers every request and the challenger scores it too. What
  comes out is the shadow run's figures: the challenger's flag rate over the
  champion's (what the canary guard expects again), both models' p99 time to answer
  one row, timed in turns on the same rows
  (:func:`loopline.feedback.paired_p99_ms`), and whether the challenger's primary
  engine failed. It passes if the p99 stays within ``max_latency_ratio`` of the
  champion's, or within ``latency_allowance_ms`` of it (the promotion gate's rule), and
  the primary engine never failed.
- canary: the challenger answers ``percent`` of routing keys (a stable hash of each
  key, as in a service); the deployment's :class:`loopline.serving.CanaryGuard` judges
  each arm's errors, flag rate and latency every 50 challenger answers, and once more
  when the replay ends, and rolls the challenger back when it degrades. A guard that
  never saw ``min_decisions`` answers on each arm has not judged: the result says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopline.feedback import paired_p99_ms
from loopline.models import ServingModel
from loopline.serving import Deployment, Prediction

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Replay:
    """The fixed set's requests as a service would score them.

    Args:
        keys: Each request's routing key (the canary share is a stable hash of it).
        inputs: A model's input rows for the requests (its own columns, in order).
        acts: Whether each of a model's outputs acts (flags, blocks, escalates): what
            the canary guard compares between the arms.
    """

    keys: Sequence[str]
    inputs: Callable[[ServingModel], F64]
    acts: Callable[[ServingModel, F64], npt.NDArray[np.bool_]]


@dataclass(frozen=True)
class ShadowRun:
    requests: int
    flag_ratio: float  # the challenger's flag rate over the champion's
    champion_p99_ms: float
    challenger_p99_ms: float
    challenger_fell_back: bool
    passed: bool
    why: str


@dataclass(frozen=True)
class CanaryRun:
    percent: float
    decisions: dict[str, int]  # per arm
    flag_rates: dict[str, float]
    p99_ms: dict[str, float]
    judged: bool  # the guard saw enough answers on each arm
    rolled_back: bool
    why: str


def shadow(
    deployment: Deployment,
    version: int,
    replay: Replay,
    *,
    max_latency_ratio: float = 1.25,
    latency_allowance_ms: float = 1.0,
    timed_rows: int = 1000,
) -> ShadowRun:
    """Load ``version`` beside the champion and score every replayed request with both."""
    deployment.shadow(version)
    champion, challenger = deployment.routing.champion, deployment.routing.challenger
    assert challenger is not None
    x_a, x_b = replay.inputs(champion), replay.inputs(challenger)
    a, _ = champion.predict(x_a)
    b, fell_back = challenger.predict(x_b)
    acts_a, acts_b = replay.acts(champion, a), replay.acts(challenger, b)
    for i, key in enumerate(replay.keys):
        deployment.observe(
            _prediction(
                key, i, champion, "champion", bool(acts_a[i]), (bool(acts_a[i]), bool(acts_b[i]))
            )
        )
    n = min(timed_rows, len(replay.keys))
    p99_a, p99_b = paired_p99_ms(
        lambda x: champion.predict(x), lambda x: challenger.predict(x), x_a[:n], x_b[:n]
    )
    ratio = deployment.shadow_flag_ratio()
    limit = max(max_latency_ratio * p99_a, p99_a + latency_allowance_ms)
    passed = p99_b <= limit and not fell_back
    why = (
        f"{len(replay.keys)} replayed requests: the challenger flags {ratio:.2f}x the "
        f"champion's; p99 {p99_b:.3f} ms against {p99_a:.3f} ms over {n} rows (limit "
        f"{max_latency_ratio:g}x or +{latency_allowance_ms:g} ms)"
    )
    if fell_back:
        why += "; the challenger's primary engine failed and its fallback answered"
    return ShadowRun(len(replay.keys), ratio, p99_a, p99_b, fell_back, passed, why)


def canary(deployment: Deployment, replay: Replay, percent: float) -> CanaryRun:
    """Let the shadowed challenger answer ``percent`` of routing keys, guarded, and
    replay the requests until the end or until the guard rolls it back."""
    deployment.canary(percent, deployment.shadow_flag_ratio())
    routing = deployment.routing
    challenger = routing.challenger
    assert challenger is not None
    x = {"champion": replay.inputs(routing.champion), "challenger": replay.inputs(challenger)}
    ms: dict[str, list[float]] = {"champion": [], "challenger": []}
    flags = {"champion": 0, "challenger": 0}
    rolled_back = ""
    for i, key in enumerate(replay.keys):
        model, arm = routing.pick(key)
        started = time.perf_counter()
        score, fell_back = model.predict(x[arm][i : i + 1])
        ms[arm].append((time.perf_counter() - started) * 1000)
        acts = bool(replay.acts(model, score)[0])
        flags[arm] += acts
        deployment.observe(_prediction(key, i, model, arm, acts, None, fell_back, ms[arm][-1]))
        if not deployment.canary_alive():
            rolled_back = f"rolled it back after {i + 1} requests"
            break
    verdict = None if rolled_back else deployment.guard.verdict()
    if verdict is not None:  # the replay's end: one last judgement
        deployment.retire()
        rolled_back = f"rolled it back at the end of the replay: {verdict}"
        if deployment.on_rollback is not None:
            deployment.on_rollback(challenger.label, verdict)
    decisions = {arm: len(times) for arm, times in ms.items()}
    need = deployment.guard.min_decisions
    judged = bool(rolled_back) or min(decisions.values()) >= need
    seen = f"answers: champion {decisions['champion']}, challenger {decisions['challenger']}"
    if rolled_back:
        why = f"{percent:g}% of routing keys; the guard {rolled_back} ({seen})"
    elif judged:
        why = f"{percent:g}% of routing keys; the guard found it healthy ({seen})"
    else:
        why = (
            f"{percent:g}% of routing keys; the guard has not judged: it needs {need} "
            f"answers on each arm ({seen}); it judges again on live traffic"
        )
    return CanaryRun(
        percent=percent,
        decisions=decisions,
        flag_rates={arm: flags[arm] / max(n, 1) for arm, n in decisions.items()},
        p99_ms={arm: float(np.percentile(t, 99)) if t else 0.0 for arm, t in ms.items()},
        judged=judged,
        rolled_back=bool(rolled_back),
        why=why,
    )


def _prediction(
    key: str,
    i: int,
    model: ServingModel,
    arm: str,
    positive: bool,
    shadow: tuple[bool, bool] | None,
    fell_back: bool = False,
    model_ms: float = 0.0,
) -> Prediction[None]:
    return Prediction(
        response=None,
        request_id=str(i),
        routing_key=key,
        model_version=model.label,
        arm=arm,
        inputs={},
        outputs={},
        positive=positive,
        degraded=["model_fallback"] if fell_back else [],
        timings_ms={"model": model_ms},
        shadow_positive=shadow,
    )
