"""Declarative, versioned, hot-reloadable decision rules (YAML).

::

    lists:
      blocked_cards: [tok_5f0c...]
      blocked_devices: [dev-0000042]
    rules:                       # evaluated in this order
      - id: blocked-card
        action: block            # decline at once, whatever the model says
        when: {field: card_token, in: blocked_cards}
      - id: impossible-travel
        action: block
        when: {field: travel_kmh, op: ">", value: 900}
      - id: large-amount
        action: adjust           # add to the model's score (clipped to [0, 1])
        score: 0.3
        when: {field: tx_amount, op: ">", value: 220}

A condition reads one field of the request or one feature. A rule set's version is the
SHA-256 of its text; :meth:`RuleBook.current` re-reads the file when it changes on disk.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import operator
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from loopline.exceptions import ConfigError

log = logging.getLogger("loopline.serving")
F64 = npt.NDArray[np.float64]
_ROW_BY_ROW = 4  # batches this small: the rules row by row

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Rule:
    id: str
    action: str  # "block" or "adjust"
    field: str
    op: str | None = None
    value: Any = None
    in_list: frozenset[str] | None = None
    score: float = 0.0

    def matches(self, values: Mapping[str, Any]) -> bool:
        got = values.get(self.field)
        if got is None or (isinstance(got, float) and math.isnan(got)):
            return False  # unknown never triggers a rule
        if self.in_list is not None:
            return str(got) in self.in_list
        assert self.op is not None
        try:
            return bool(_OPS[self.op](got, self.value))
        except TypeError:  # a string field against a number: no match, never a 5xx
            return False

    def matches_many(self, column: Any, n: int) -> npt.NDArray[np.bool_]:
        """:meth:`matches` of each of ``n`` values at once (a numeric column compared in
        one NumPy call; other values one by one, as :meth:`matches`)."""
        if column is None:
            return np.zeros(n, dtype=np.bool_)
        values = np.asarray(column)
        number = isinstance(self.value, int | float) and not isinstance(self.value, bool)
        if self.in_list is None and number and values.dtype.kind in "fiu":
            with np.errstate(invalid="ignore"):
                hit = np.asarray(_OPS[self.op](values, self.value), dtype=np.bool_)  # type: ignore[index]
            return hit & ~np.isnan(values) if values.dtype.kind == "f" else hit
        field = self.field
        return np.fromiter(
            (self.matches({field: v}) for v in values.tolist()), dtype=np.bool_, count=n
        )


@dataclass(frozen=True)
class Outcome:
    """What the rules did: the blocking rule (if any), the adjusted score, and every rule
    that fired, in order."""

    blocked_by: str | None
    score: float
    fired: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    version: str
    rules: tuple[Rule, ...]

    @functools.cached_property
    def fields(self) -> frozenset[str]:
        """The fields the rules read."""
        return frozenset(r.field for r in self.rules)

    def fields_in(self, *sources: Mapping[str, Any]) -> list[str]:
        """The fields the rules read that one of ``sources`` has (so only those are
        gathered for a decision)."""
        return [f for f in self.fields if any(f in s for s in sources)]

    def apply(self, score: float, values: Mapping[str, Any]) -> Outcome:
        fired: list[str] = []
        for rule in self.rules:
            if not rule.matches(values):
                continue
            fired.append(rule.id)
            if rule.action == "block":
                return Outcome(rule.id, score, tuple(fired))
            score = min(1.0, max(0.0, score + rule.score))
        return Outcome(None, score, tuple(fired))

    def apply_many(self, scores: F64, values: Mapping[str, Any]) -> Outcomes:
        """:meth:`apply` of each row at once: ``values`` maps a field to its column (a few
        rows one by one: NumPy's per-call cost would exceed the work)."""
        n = len(scores)
        if n <= _ROW_BY_ROW:
            each = [
                self.apply(float(s), {f: c[i] for f, c in values.items()})
                for i, s in enumerate(scores)
            ]
            return Outcomes(
                [o.blocked_by for o in each],
                np.array([o.score for o in each], dtype=np.float64),
                [o.fired for o in each],
            )
        out = np.array(scores, dtype=np.float64)
        blocked = np.zeros(n, dtype=np.bool_)
        blocked_by: list[str | None] = [None] * n
        fired: list[tuple[str, ...]] = [()] * n
        for rule in self.rules:
            hit = rule.matches_many(values.get(rule.field), n) & ~blocked
            if not hit.any():
                continue
            rows = np.flatnonzero(hit)
            for i in rows.tolist():
                fired[i] = (*fired[i], rule.id)
            if rule.action == "block":
                blocked[rows] = True
                for i in rows.tolist():
                    blocked_by[i] = rule.id
            else:
                out[rows] = np.clip(out[rows] + rule.score, 0.0, 1.0)
        return Outcomes(blocked_by, out, fired)


@dataclass(frozen=True)
class Outcomes:
    """What the rules did to each row of a batch (:class:`Outcome`'s fields as columns)."""

    blocked_by: list[str | None]
    scores: F64
    fired: list[tuple[str, ...]]


def parse(text: str, source: str = "<rules>") -> RuleSet:
    """Parse and check a rule file; errors name the rule, the key and the fix."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc}).") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a mapping with 'rules' (and 'lists').")
    raw_lists = doc.get("lists") or {}
    if not isinstance(raw_lists, dict) or not all(
        isinstance(v, list | None) and all(isinstance(x, str | int) for x in v or ())
        for v in raw_lists.values()
    ):
        raise ConfigError(
            f"{source}: 'lists' must map each name to a list of strings, e.g. "
            "'lists: {blocked: [a, b]}'."
        )
    lists = {str(k): frozenset(map(str, v or ())) for k, v in raw_lists.items()}
    raw_rules = doc.get("rules") or []
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{source}: 'rules' must be a list of rules.")
    rules, seen = [], set()
    for i, raw in enumerate(raw_rules):
        rules.append(_rule(raw, i, lists, source))
        if rules[-1].id in seen:
            raise ConfigError(f"{source}: rule id {rules[-1].id!r} is used twice.")
        seen.add(rules[-1].id)
    return RuleSet(hashlib.sha256(text.encode()).hexdigest()[:12], tuple(rules))


def _rule(raw: Any, i: int, lists: dict[str, frozenset[str]], source: str) -> Rule:
    where = f"{source}: rule #{i + 1}"
    if not isinstance(raw, dict) or "id" not in raw:
        raise ConfigError(f"{where} needs an 'id'.")
    where = f"{source}: rule {raw['id']!r}"
    action = raw.get("action")
    if action not in ("block", "adjust"):
        raise ConfigError(f"{where}: 'action' must be block or adjust, got {action!r}.")
    when = raw.get("when")
    if not isinstance(when, dict) or "field" not in when:
        raise ConfigError(f"{where}: 'when' needs a 'field'.")
    if "in" in when:
        name = when["in"]
        if name not in lists:
            raise ConfigError(f"{where}: list {name!r} is not under 'lists' ({sorted(lists)}).")
        return Rule(str(raw["id"]), action, str(when["field"]), in_list=lists[name])
    op = when.get("op")
    if op not in _OPS:
        raise ConfigError(f"{where}: 'op' must be one of {sorted(_OPS)}, got {op!r}.")
    value = when.get("value")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (number or (op in ("==", "!=") and isinstance(value, str | bool))):
        raise ConfigError(
            f"{where}: 'value' must be a number (a string or true/false only with == or "
            f"!=), got {value!r}."
        )
    score = raw.get("score", 0.0)
    if isinstance(score, bool) or not isinstance(score, int | float) or not -1.0 <= score <= 1.0:
        raise ConfigError(f"{where}: 'score' must be a number within [-1, 1], got {score!r}.")
    return Rule(str(raw["id"]), action, str(when["field"]), op, value, score=float(score))


class RuleBook:
    """A rule file, re-read when it changes (hot reload without a restart): the file is
    looked at no more often than every ``check_every_s`` (a stat costs ~20 µs here)."""

    def __init__(self, path: Path | None, *, check_every_s: float = 0.25) -> None:
        self.path = path
        self.check_every_s = check_every_s
        self._checked = time.monotonic()
        self._stamp: tuple[int, int] | None = None
        self._rules = RuleSet("none", ())
        self.failures = 0  # reloads that kept the last good rules
        self._last_error: str | None = None
        self.reload()

    def reload(self) -> RuleSet:
        """Read the file now; a broken file keeps the rules in force and raises."""
        if self.path is None:
            return self._rules
        stat = os.stat(self.path)
        self._rules = parse(self.path.read_text(), str(self.path))
        self._stamp = (stat.st_mtime_ns, stat.st_size)
        return self._rules

    def current(self) -> RuleSet:
        """The rules in force, re-read first if the file changed on disk."""
        now = time.monotonic()
        if self.path is not None and now - self._checked >= self.check_every_s:
            self._checked = now
            # a broken edit or a deleted file keeps the last good rules (and is logged
            # once); /admin/rules/reload reports it to whoever made it
            try:
                stat = os.stat(self.path)
                if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                    self._stamp = (stat.st_mtime_ns, stat.st_size)
                    self.reload()
            except (ConfigError, OSError) as exc:
                self.failures += 1
                if str(exc) != self._last_error:  # once per new error, not every check
                    self._last_error = str(exc)
                    log.warning(
                        "rule file not reloaded: the last good rules stay",
                        extra={"rules": str(self.path), "error": str(exc)},
                    )
            else:
                self._last_error = None
        return self._rules
