"""Regional policies: what happens to an item once it is scored, region by region.

A policy is versioned and says, per category, which action each score earns: an ordered
list of rules (highest threshold first; the first whose threshold the score reaches
applies) and an *uncertain band* ``[low, high)`` whose scores go to a person::

    regions:
      default:
        version: 4
        categories:
          sexual:
            rules: [{threshold: 0.9, action: remove}, {threshold: 0.6, action: age_gate}]
            uncertain: [0.4, 0.6]
      de:
        version: 3
        categories:                  # the rest is inherited from default
          hate:
            rules: [{threshold: 0.55, action: remove}]
            uncertain: [0.35, 0.55]

A region other than ``default`` inherits every category it does not list from
``default``; ``rules: []`` without a band allows a category outright. An unknown region
gets ``default``. Actions are ordered by :data:`~loopline.apps.moderation.taxonomy.STRENGTH`,
and a stronger rule sits at a higher threshold (checked on load).

Deciding: each category's first rule that fires is a reason; a score in its category's
band is a reason to escalate, unless a rule already removes the item (a person's time is
not spent on what is gone). The strongest action wins; ties go to the more severe category
(:data:`~loopline.apps.moderation.taxonomy.SEVERITY`), then to the higher score. The
:class:`Decision` names the category, score and rule that decided and lists every reason.

:class:`Policies` re-reads its file when it changes on disk (:meth:`Policies.refresh`); a
broken edit keeps the policies in force and is reported in :attr:`Policies.last_error`.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from loopline.apps.moderation.taxonomy import ACTIONS, CATEGORIES, SEVERITY, STRENGTH
from loopline.exceptions import ConfigError

DEFAULT_REGION = "default"
RULE_ACTIONS = tuple(a for a in ACTIONS if a != "allow")  # below every rule is allowed


@dataclass(frozen=True, slots=True)
class Rule:
    """``score >= threshold`` earns ``action``."""

    threshold: float
    action: str


@dataclass(frozen=True, slots=True)
class CategoryPolicy:
    rules: tuple[Rule, ...]  # highest threshold first
    uncertain: tuple[float, float] | None  # [low, high): escalate to a person


@dataclass(frozen=True, slots=True)
class Reason:
    """One rule that fired: its category, the score it saw, its threshold (a band's
    low end for an uncertain band), its action and its readable id."""

    category: str
    score: float
    threshold: float
    action: str
    rule: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What a region's policy does with one item, and why.

    Attributes:
        action: One of :data:`~loopline.apps.moderation.taxonomy.ACTIONS`.
        category: The category whose rule decided (``None`` when allowed).
        score: That category's score (when allowed: the highest score seen, 0 if none).
        rule: The deciding rule's id, ``"<region>@<version>:<category>>=<threshold>:<action>"``
            (``"<region>@<version>:allow"`` when nothing fired).
        region: The region whose policy applied (``"default"`` for an unknown one).
        policy_version: That policy's version.
        reasons: Every rule that fired, the deciding one included.
    """

    action: str
    category: str | None
    score: float
    rule: str
    region: str
    policy_version: str
    reasons: tuple[Reason, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": [asdict(r) for r in self.reasons]}


@dataclass(frozen=True, slots=True)
class RegionPolicy:
    region: str
    version: str
    categories: Mapping[str, CategoryPolicy]

    def decide(self, scores: Mapping[str, float]) -> Decision:
        """The decision for one item's ``scores`` (category -> probability in [0, 1];
        a category not scored counts as 0)."""
        checked = _checked_scores(scores)
        reasons: list[Reason] = []
        bands: list[Reason] = []
        for category, score in checked.items():
            policy = self.categories.get(category)
            if policy is None:
                continue
            rule = next((r for r in policy.rules if score >= r.threshold), None)
            if rule is not None:
                rid = f"{self._at}:{category}>={rule.threshold:g}:{rule.action}"
                reasons.append(Reason(category, score, rule.threshold, rule.action, rid))
            if policy.uncertain is not None and _inside(score, policy.uncertain):
                low, high = policy.uncertain
                rid = f"{self._at}:{category} in [{low:g},{high:g}):escalate"
                bands.append(Reason(category, score, low, "escalate", rid))
        if not any(r.action == "remove" for r in reasons):
            reasons += bands
        if not reasons:
            top = max(checked.values(), default=0.0)
            return Decision("allow", None, top, f"{self._at}:allow", self.region,
                            self.version, ())  # fmt: skip
        won = max(reasons, key=lambda r: (STRENGTH[r.action], SEVERITY[r.category], r.score))
        return Decision(won.action, won.category, won.score, won.rule, self.region,
                        self.version, tuple(reasons))  # fmt: skip

    @property
    def _at(self) -> str:
        return f"{self.region}@{self.version}"


def _inside(score: float, band: tuple[float, float]) -> bool:
    return band[0] <= score < band[1]


def _checked_scores(scores: Mapping[str, float]) -> dict[str, float]:
    out = {}
    for category, score in scores.items():
        if category not in CATEGORIES:
            raise ValueError(
                f"Unknown category {category!r} in the scores; expected some of {CATEGORIES}."
            )
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise ValueError(f"The score of {category!r} must be a number. Got {score!r}.")
        if not 0.0 <= score <= 1.0:  # NaN fails too
            raise ValueError(f"The score of {category!r} must be within [0, 1]. Got {score!r}.")
        out[category] = float(score)
    return out


def parse(text: str, source: str = "<policies>") -> dict[str, RegionPolicy]:
    """Parse and check a policy file; an error names the file, the region and the field."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc}).") from None
    regions = doc.get("regions") if isinstance(doc, dict) else None
    if not isinstance(regions, dict) or not isinstance(regions.get(DEFAULT_REGION), dict):
        raise ConfigError(
            f"{source}: expected 'regions:' mapping each region to its policy, with a "
            f"'{DEFAULT_REGION}' region (used for every region not listed)."
        )
    base = _region(DEFAULT_REGION, regions[DEFAULT_REGION], {}, source)
    out = {DEFAULT_REGION: base}
    for name, raw in regions.items():
        if name != DEFAULT_REGION:
            key = str(name).strip().lower()
            out[key] = _region(key, raw, base.categories, source)
    return out


def _region(
    name: str, raw: Any, inherited: Mapping[str, CategoryPolicy], source: str
) -> RegionPolicy:
    where = f"{source}: region {name!r}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping with 'version' and 'categories'.")
    unknown = set(raw) - {"version", "categories"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; expected "
                          "'version' and 'categories'.")  # fmt: skip
    version = raw.get("version")
    if isinstance(version, bool) or not isinstance(version, int | str) or version == "":
        raise ConfigError(f"{where}: 'version' must be a string or an integer. Got {version!r}.")
    cats = raw.get("categories") or {}
    if not isinstance(cats, dict):
        raise ConfigError(f"{where}: 'categories' must map a category to its rules.")
    categories = dict(inherited)
    for category, body in cats.items():
        if category not in CATEGORIES:
            raise ConfigError(f"{where}: unknown category {category!r} under 'categories'; "
                              f"expected one of {CATEGORIES}.")  # fmt: skip
        categories[category] = _category(f"{where}: categories.{category}", body)
    return RegionPolicy(name, str(version), categories)


def _category(where: str, raw: Any) -> CategoryPolicy:
    if not isinstance(raw, dict) or set(raw) - {"rules", "uncertain"}:
        raise ConfigError(f"{where} must be a mapping with 'rules' (a list) and optionally "
                          f"'uncertain' ([low, high]). Got {raw!r}.")  # fmt: skip
    raw_rules = raw.get("rules") or []
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{where}.rules must be a list of {{threshold, action}}.")
    rules = tuple(_rule(f"{where}.rules[{i}]", r) for i, r in enumerate(raw_rules))
    for i, (above, below) in enumerate(itertools.pairwise(rules)):
        if below.threshold >= above.threshold or STRENGTH[below.action] > STRENGTH[above.action]:
            raise ConfigError(
                f"{where}.rules[{i + 1}]: rules must go from the highest threshold down, "
                f"with no stronger action below a weaker one. Got {below.action} at "
                f"{below.threshold:g} after {above.action} at {above.threshold:g}."
            )
    return CategoryPolicy(rules, _band(f"{where}.uncertain", raw.get("uncertain")))


def _rule(where: str, raw: Any) -> Rule:
    if not isinstance(raw, dict) or set(raw) != {"threshold", "action"}:
        raise ConfigError(f"{where} must be {{threshold: <0..1>, action: <action>}}. "
                          f"Got {raw!r}.")  # fmt: skip
    if raw["action"] not in RULE_ACTIONS:
        raise ConfigError(f"{where}.action must be one of {RULE_ACTIONS} (a score below "
                          f"every rule is allowed). Got {raw['action']!r}.")  # fmt: skip
    return Rule(_unit(f"{where}.threshold", raw["threshold"]), raw["action"])


def _band(where: str, raw: Any) -> tuple[float, float] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) != 2:
        raise ConfigError(f"{where} must be [low, high]. Got {raw!r}.")
    low, high = _unit(where, raw[0]), _unit(where, raw[1])
    if low >= high:
        raise ConfigError(f"{where} must have low < high. Got [{low:g}, {high:g}].")
    return low, high


def _unit(where: str, value: Any) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ConfigError(f"{where} must be a number within [0, 1]. Got {value!r}.")
    return float(value)


def packaged_path() -> Path:
    """The policies shipped with the application (``policies.yaml`` beside this module)."""
    return Path(str(resources.files(__package__).joinpath("policies.yaml")))


class Policies:
    """The regional policies of one file, re-read when it changes.

    Args:
        path: The YAML file; the packaged ``policies.yaml`` when ``None``.

    Raises:
        ConfigError: The file is invalid (on construction; :meth:`refresh` keeps the
            policies in force instead).

    Example:
        >>> p = Policies()
        >>> p.decide("de", {"hate": 0.6}).action
        'remove'
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = packaged_path() if path is None else Path(path)
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._regions = parse(self.path.read_text(encoding="utf-8"), str(self.path))

    def _stat(self) -> tuple[int, int]:
        stat = os.stat(self.path)
        return stat.st_mtime_ns, stat.st_size

    def refresh(self) -> bool:
        """Re-read the file if its modification time or size changed (one ``stat``, a few
        microseconds: call it on a timer or before each decision).

        Returns ``True`` when new policies took effect. An invalid or unreadable file
        keeps the policies in force, and :attr:`last_error` says why (``None`` once a
        read succeeds).
        """
        with self._lock:  # one reload at a time; readers see the old or the new mapping
            try:
                stamp = self._stat()
                if stamp == self._stamp:
                    return False
                self._stamp = stamp
                regions = parse(self.path.read_text(encoding="utf-8"), str(self.path))
            except (ConfigError, OSError, UnicodeDecodeError) as exc:
                self.last_error = str(exc)
                return False
            self._regions = regions  # one reference swapped: atomic for readers
            self.last_error = None
            return True

    def policy(self, region: str) -> RegionPolicy:
        """The policy in force for ``region`` (``default`` for an unknown one)."""
        if not isinstance(region, str):
            raise ValueError(f"A region must be text (e.g. 'de'). Got {region!r:.80}.")
        regions = self._regions
        return regions.get(region.strip().lower()) or regions[DEFAULT_REGION]

    def decide(self, region: str, scores: Mapping[str, float]) -> Decision:
        """The decision of ``region``'s policy on ``scores`` (see :meth:`RegionPolicy.decide`)."""
        return self.policy(region).decide(scores)

    def versions(self) -> dict[str, str]:
        """The version in force of each region's policy."""
        return {name: p.version for name, p in self._regions.items()}
