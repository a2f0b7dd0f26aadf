"""Online experiments: A/B tests on per-unit metrics, team-draft interleaving, and the
stable assignment of units to arms.

- :func:`ab_test` compares two arms on one value per unit (per-user click-through rate,
  per-user revenue): Welch's t-test, the difference of means and the relative lift, each
  with a confidence interval at ``1 - alpha`` (Welch-Satterthwaite degrees of freedom).
  The unit is what was randomised: per-impression values of one user are not independent,
  so aggregate them to one value per user first.
- :func:`team_draft`, :func:`credit` and :func:`interleaving_test`: team-draft
  interleaving (Radlinski, Kurup and Joachims, "How Does Clickthrough Data Reflect
  Retrieval Quality?", CIKM 2008). Each impression merges two rankings; clicks credit the
  ranking that contributed the clicked items; a sign test over impressions says which
  ranking users prefer. It needs far fewer impressions than an A/B test on the same
  clicks, since every user sees both rankings.
- :func:`assign`: a unit's arm from a keyed hash of its id, stable across processes and
  restarts. With ``salt=""`` it buckets exactly as :meth:`loopline.serving.Routing.pick`
  routes a canary share, so an experiment and a canary on the same keys agree.

``scipy`` is imported where it is used, so importing :mod:`loopline.feedback` stays light.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from loopline.exceptions import ConfigError

T = TypeVar("T", bound=Hashable)
Team = Literal["a", "b"]
TEAMS: tuple[Team, Team] = ("a", "b")
BUCKETS = 10_000  # assign's resolution: shares are honoured to 0.01 %


@dataclass(frozen=True, slots=True, kw_only=True)
class ABResult:
    """A two-sample comparison of per-unit values, treatment against control.

    ``difference`` is ``mean_treatment - mean_control``; ``lift`` is that over
    ``mean_control`` (``nan`` when the control mean is 0). Both intervals are at
    ``1 - alpha``; the lift's by the delta method on the ratio of the two means.
    ``significant`` is ``p_value < alpha``; ``winner`` is then the arm with the higher
    mean, else ``None``.
    """

    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    difference: float
    difference_ci: tuple[float, float]
    lift: float
    lift_ci: tuple[float, float]
    df: float
    p_value: float
    alpha: float
    significant: bool
    winner: Literal["treatment", "control"] | None


def ab_test(control: npt.ArrayLike, treatment: npt.ArrayLike, *, alpha: float = 0.05) -> ABResult:
    """Welch's two-sample t-test of ``treatment`` against ``control``, one value per unit.

    Args:
        control: The control arm's per-unit values (e.g. each user's click-through rate).
        treatment: The treatment arm's per-unit values.
        alpha: The significance level; the intervals are at ``1 - alpha``.

    Raises:
        ConfigError: An arm has fewer than 2 units or a value that is not finite, or
            ``alpha`` is not in (0, 1).

    Example:
        >>> r = ab_test([0.1, 0.2, 0.15, 0.12], [0.3, 0.25, 0.35, 0.28])
        >>> r.winner, round(r.difference, 4)
        ('treatment', 0.1525)
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1). Got {alpha}.")
    x, y = _arm(control, "control"), _arm(treatment, "treatment")
    mx, my = float(x.mean()), float(y.mean())
    vx, vy = float(x.var(ddof=1)) / len(x), float(y.var(ddof=1)) / len(y)
    diff, se = my - mx, math.sqrt(vx + vy)
    if se == 0.0:  # both arms constant: nothing to estimate
        df, p, q = math.inf, (1.0 if diff == 0 else 0.0), 0.0
    else:
        from scipy import stats

        df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
        p = float(stats.ttest_ind(y, x, equal_var=False).pvalue)
        q = float(stats.t.ppf(1 - alpha / 2, df))
    lift, lift_ci = _lift(mx, my, vx, vy, q)
    significant = p < alpha
    return ABResult(
        n_control=len(x),
        n_treatment=len(y),
        mean_control=mx,
        mean_treatment=my,
        difference=diff,
        difference_ci=(diff - q * se, diff + q * se),
        lift=lift,
        lift_ci=lift_ci,
        df=df,
        p_value=p,
        alpha=alpha,
        significant=significant,
        winner=("treatment" if diff > 0 else "control") if significant else None,
    )


def _arm(values: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    x = np.asarray(values, dtype=np.float64).ravel()
    if len(x) < 2:
        raise ConfigError(f"The '{name}' arm needs at least 2 units. Got {len(x)}.")
    if not np.isfinite(x).all():
        raise ConfigError(f"The '{name}' arm has a value that is not finite (NaN or inf).")
    return x


def _lift(
    mx: float, my: float, vx: float, vy: float, q: float
) -> tuple[float, tuple[float, float]]:
    """``my / mx - 1`` and its interval by the delta method:
    ``var(my/mx) ~ vy/mx^2 + my^2 vx/mx^4``."""
    if mx == 0.0:
        return math.nan, (math.nan, math.nan)
    lift = my / mx - 1
    se = math.sqrt(vy / mx**2 + my**2 * vx / mx**4)
    return lift, (lift - q * se, lift + q * se)


@dataclass(frozen=True, slots=True, kw_only=True)
class Interleaved(Generic[T]):
    """An interleaved list: ``items`` in the order shown, and the team (``"a"`` or
    ``"b"``, the ranking) that contributed each."""

    items: tuple[T, ...]
    teams: tuple[Team, ...]


def team_draft(a: Sequence[T], b: Sequence[T], k: int, rng: np.random.Generator) -> Interleaved[T]:
    """Team-draft interleaving of rankings ``a`` and ``b`` into ``k`` distinct items.

    As captains picking teams: the team with fewer picks so far (a coin flip on a tie)
    adds its highest-ranked item not yet in the list. When one ranking runs out, the other
    fills the rest, so the list is ``min(k, len(set(a) | set(b)))`` long; with
    ``len(a), len(b) >= k`` neither runs out.

    Raises:
        ConfigError: ``k`` is below 1.
    """
    if k < 1:
        raise ConfigError(f"k must be at least 1. Got {k}.")
    rankings: dict[Team, Sequence[T]] = {"a": a, "b": b}
    at: dict[Team, int] = {"a": 0, "b": 0}  # each ranking's next item not yet picked
    picks: dict[Team, int] = {"a": 0, "b": 0}
    items: list[T] = []
    teams: list[Team] = []
    chosen: set[T] = set()
    while len(items) < k:
        for t in TEAMS:
            while at[t] < len(rankings[t]) and rankings[t][at[t]] in chosen:
                at[t] += 1
        left = [t for t in TEAMS if at[t] < len(rankings[t])]
        if not left:
            break
        team = _next_team(left, picks, rng)
        items.append(rankings[team][at[team]])
        chosen.add(items[-1])
        teams.append(team)
        picks[team] += 1
    return Interleaved(items=tuple(items), teams=tuple(teams))


def _next_team(left: list[Team], picks: dict[Team, int], rng: np.random.Generator) -> Team:
    """The team with fewer picks, a coin flip on a tie; the only one left with items."""
    if len(left) == 1:
        return left[0]
    if picks["a"] != picks["b"]:
        return "a" if picks["a"] < picks["b"] else "b"
    return "a" if rng.random() < 0.5 else "b"


def credit(interleaved: Interleaved[T], clicked_positions: Collection[int]) -> int:
    """One impression's outcome: ``+1`` when ``a``'s items got more clicks, ``-1`` when
    ``b``'s did, ``0`` for a tie (no clicks included).

    Raises:
        ConfigError: A clicked position is outside the interleaved list.
    """
    n = len(interleaved.items)
    bad = sorted(p for p in clicked_positions if not 0 <= p < n)
    if bad:
        raise ConfigError(f"clicked_positions must be in [0, {n}). Got {bad}.")
    clicks_a = sum(interleaved.teams[p] == "a" for p in set(clicked_positions))
    clicks_b = len(set(clicked_positions)) - clicks_a
    return (clicks_a > clicks_b) - (clicks_a < clicks_b)


@dataclass(frozen=True, slots=True, kw_only=True)
class InterleavingResult:
    """Impressions won by each ranking, ties, the preference
    ``delta = (wins_a - wins_b) / impressions`` (in [-1, 1]; > 0 favours ``a``), and a
    two-sided sign test over the impressions that were not ties."""

    wins_a: int
    wins_b: int
    ties: int
    delta: float
    p_value: float
    alpha: float
    significant: bool
    winner: Team | None


def interleaving_test(outcomes: Sequence[int], *, alpha: float = 0.05) -> InterleavingResult:
    """The preference between two rankings from per-impression :func:`credit` outcomes.

    Raises:
        ConfigError: ``outcomes`` is empty or holds a value other than -1, 0, 1, or
            ``alpha`` is not in (0, 1).
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1). Got {alpha}.")
    if len(outcomes) == 0:
        raise ConfigError("outcomes is empty: interleaving_test needs at least one impression.")
    other = sorted({o for o in outcomes if o not in (-1, 0, 1)})
    if other:
        raise ConfigError(f"outcomes must each be -1, 0 or 1 (see credit). Got {other[:5]}.")
    wins_a, wins_b = sum(o == 1 for o in outcomes), sum(o == -1 for o in outcomes)
    ties = len(outcomes) - wins_a - wins_b
    if wins_a + wins_b == 0:
        p = 1.0
    else:
        from scipy import stats

        p = float(stats.binomtest(wins_a, wins_a + wins_b, 0.5).pvalue)
    significant = p < alpha
    return InterleavingResult(
        wins_a=wins_a,
        wins_b=wins_b,
        ties=ties,
        delta=(wins_a - wins_b) / len(outcomes),
        p_value=p,
        alpha=alpha,
        significant=significant,
        winner=("a" if wins_a > wins_b else "b") if significant else None,
    )


def assign(unit: str, *, salt: str, share: float) -> bool:
    """Whether ``unit`` (a user id, a session id) is in the treatment, which takes a
    ``share`` of all units. Stable: a keyed BLAKE2b hash of the unit, keyed by ``salt``,
    so the same unit always lands on the same side of one experiment, and a new salt
    reshuffles units for a new experiment independently of the last one.

    Raises:
        ConfigError: ``share`` is not in [0, 1], or ``salt`` is over 64 bytes.
    """
    if not 0 <= share <= 1:
        raise ConfigError(f"share must be in [0, 1]. Got {share}.")
    key = salt.encode()
    if len(key) > 64:
        raise ConfigError(f"salt must be at most 64 bytes (BLAKE2b's key). Got {len(key)}.")
    digest = hashlib.blake2b(unit.encode(), digest_size=4, key=key).digest()
    return int.from_bytes(digest) % BUCKETS < share * BUCKETS
