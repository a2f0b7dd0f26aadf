"""The human review queue: items a person must judge, most urgent first, with deadlines,
escalation, double review, appeals, and the verdicts kept as labels.

Priority (documented here, computed by :func:`priority`)::

    priority = severity * log10(10 + reach) * (1 + uncertainty)        (x 2 for an appeal)

``severity`` is the category's 1-5 (:data:`~loopline.apps.moderation.taxonomy.SEVERITY`),
``reach`` the audience the item can reach (0 counts x1, a million x6), ``uncertainty``
0 (the model is sure: x1) to 1 (a coin toss: x2). Each task's deadline is its submission
time plus the service-level time of its severity (15 minutes for severity 5 ... 24 hours
for 1). A task past its deadline is *escalated*: flagged and moved to tier 2, which only
senior reviewers claim, and which they take first, overdue tasks before the rest.

A claim leases a task for ``lease_s``; a lease not ended by a verdict lapses and the task
returns to the queue. A deterministic share (``double_review``, by a hash of the item id)
of tasks needs two independent verdicts; when they differ, a senior's third verdict
decides. A final verdict calls ``on_final(item_id, label, verdicts)`` (the service
publishes it as a label through the feedback stage) and supersedes any earlier verdict on
the item. An appeal puts a decided item back, at twice its priority, for reviewers who
did not judge it before.

Bounded: at ``capacity`` pending tasks, a submission whose priority is not above the
lowest pending (unleased) task's is refused (``dropped``), otherwise that task is evicted
(``evicted``); both are counted in :meth:`ReviewQueue.stats`. The queue lives in SQLite
(WAL), so it survives a restart.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import math
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.apps.moderation.taxonomy import CATEGORIES, LABELS, SEVERITY
from loopline.exceptions import ConfigError

DEFAULT_SLA_S: Mapping[int, float] = {5: 15 * 60, 4: 3600, 3: 4 * 3600, 2: 12 * 3600, 1: 86_400}
APPEAL_BOOST = 2.0
SUMMARY_MAX = 280  # characters: what a reviewer reads (the start of the item's words)
_MEDIAN_OVER = 1_000  # the median time to verdict is over the latest verdicts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY, item_id TEXT NOT NULL, kind TEXT NOT NULL, appeal_of INTEGER,
    category TEXT NOT NULL, score REAL NOT NULL, uncertainty REAL NOT NULL,
    reach INTEGER NOT NULL, region TEXT NOT NULL, summary TEXT NOT NULL, note TEXT NOT NULL,
    priority REAL NOT NULL, created REAL NOT NULL, deadline REAL NOT NULL,
    tier INTEGER NOT NULL DEFAULT 1, escalated INTEGER NOT NULL DEFAULT 0,
    needed INTEGER NOT NULL,                -- verdicts: 1, 2 (double review), 3 (disagreed)
    state TEXT NOT NULL DEFAULT 'pending',  -- pending, final, superseded, evicted
    lease_by TEXT, lease_until REAL, label TEXT, decided_at REAL
);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, priority);
CREATE INDEX IF NOT EXISTS tasks_item ON tasks (item_id, state);
CREATE INDEX IF NOT EXISTS tasks_decided ON tasks (state, decided_at);
CREATE TABLE IF NOT EXISTS verdicts (
    seq INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, reviewer TEXT NOT NULL,
    label TEXT NOT NULL, at REAL NOT NULL, UNIQUE (task_id, reviewer)
);
CREATE TABLE IF NOT EXISTS barred (  -- who may not judge an appeal: the item's earlier reviewers
    task_id INTEGER NOT NULL, reviewer TEXT NOT NULL, PRIMARY KEY (task_id, reviewer)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
_TASK = (
    "id, item_id, kind, category, score, uncertainty, reach, region, summary, note, "
    "priority, created, deadline, tier, escalated, lease_until"
)
_CLAIMABLE = f"""
SELECT {_TASK} FROM tasks t
WHERE state = 'pending' AND tier <= :tier AND (lease_until IS NULL OR lease_until <= :now)
  AND NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.task_id = t.id AND v.reviewer = :who)
  AND NOT EXISTS (SELECT 1 FROM barred b WHERE b.task_id = t.id AND b.reviewer = :who)
ORDER BY tier DESC, deadline <= :now DESC, priority DESC, id
LIMIT 1
"""


def priority(category: str, reach: int, uncertainty: float) -> float:
    """``severity * log10(10 + reach) * (1 + uncertainty)`` (see the module's docstring)."""
    return SEVERITY[category] * math.log10(10 + reach) * (1 + uncertainty)


@dataclass(frozen=True, slots=True)
class Task:
    """A task as a reviewer sees it: the item's id and its summary (the start of the words
    the item carries, which the reviewer judges; kept only until :meth:`ReviewQueue.forget`
    clears it after the retention period, and cleared at once from superseded and evicted
    tasks)."""

    id: int
    item_id: str
    kind: str  # "review" or "appeal"
    category: str
    score: float
    uncertainty: float
    reach: int
    region: str
    summary: str
    note: str  # the appellant's note, for an appeal
    priority: float
    created: float
    deadline: float
    tier: int
    escalated: bool
    lease_until: float | None


@dataclass(frozen=True, slots=True)
class Verdict:
    reviewer: str
    label: str
    at: float


@dataclass(frozen=True, slots=True)
class Agreement:
    """Agreement between the first two verdicts of double-reviewed tasks: Cohen's kappa
    (``None`` with no pairs, or when chance alone explains everything: one label only),
    the raw share agreed, and the number of pairs."""

    kappa: float | None
    raw: float | None
    count: int


@dataclass(frozen=True, slots=True)
class QueueStats:
    pending: dict[int, int]  # by tier
    overdue: int  # pending past their deadline
    median_time_to_verdict_s: float | None  # over the latest 1,000 final verdicts
    decided: int
    escalations: int
    disagreements: int  # double reviews that needed a senior
    appeals: int
    overturned_share: float | None  # of decided appeals, those that changed the label
    dropped: int  # refused at capacity
    evicted: int  # pushed out at capacity by a more urgent task


def cohen_kappa(pairs: list[tuple[str, str]]) -> Agreement:
    """Cohen's kappa of two raters: ``(p_o - p_e) / (1 - p_e)``, ``p_o`` the share of
    pairs that agree, ``p_e`` the agreement expected by chance from each rater's label
    frequencies."""
    n = len(pairs)
    if n == 0:
        return Agreement(None, None, 0)
    p_o = sum(a == b for a, b in pairs) / n
    first = collections.Counter(a for a, _ in pairs)
    second = collections.Counter(b for _, b in pairs)
    p_e = sum(first[k] * second[k] for k in first) / (n * n)
    kappa = None if p_e >= 1.0 else (p_o - p_e) / (1.0 - p_e)
    return Agreement(kappa, p_o, n)


class ReviewQueue:
    """The review queue in one SQLite file.

    Args:
        path: The database file (created with its folder).
        capacity: The most pending tasks.
        sla_s: Seconds to a verdict by severity (1-5); :data:`DEFAULT_SLA_S` when ``None``.
        double_review: The share of tasks that need two independent verdicts.
        lease_s: How long a claim holds a task.
        clock: Time in seconds, for every ``now`` not given.
        on_final: Called with ``(item_id, label, verdicts)`` when a task's verdict is final,
            after it is stored (:meth:`labels` has it too: a label whose publication
            failed can be sent again from there).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        capacity: int = 10_000,
        sla_s: Mapping[int, float] | None = None,
        double_review: float = 0.1,
        lease_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        on_final: Callable[[str, str, tuple[Verdict, ...]], None] | None = None,
    ) -> None:
        sla = DEFAULT_SLA_S if sla_s is None else sla_s
        if set(sla) != {1, 2, 3, 4, 5} or not all(v > 0 for v in sla.values()):
            raise ConfigError(
                f"ReviewQueue's 'sla_s' must map each severity 1-5 to a positive "
                f"number of seconds. Got {dict(sla)!r}."
            )
        if capacity < 1 or not 0.0 <= double_review <= 1.0 or not lease_s > 0:
            raise ConfigError(
                f"ReviewQueue needs capacity >= 1, double_review within [0, 1] "
                f"and lease_s > 0. Got {capacity}, {double_review}, {lease_s}."
            )
        self.path = Path(path)
        self.capacity = capacity
        self.sla_s = sla_s
        self.double_review = double_review
        self.lease_s = lease_s
        self.clock = clock
        self.on_final = on_final
        self._sla = dict(sla)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def submit(
        self, item_id: str, *, category: str, score: float, uncertainty: float, reach: int,
        region: str, summary: str, now: float | None = None,
    ) -> int | None:  # fmt: skip
        """Queue an item for review; its task id, or ``None`` when refused at capacity.

        An item already pending keeps its task (whose id is returned).
        """
        _check_item(item_id, category, score, uncertainty, reach, region, summary)
        now = self.clock() if now is None else now
        prio = priority(category, reach, uncertainty)
        with self._write() as db:
            pending = _pending(db, item_id)
            if pending is not None:
                return pending
            if not self._make_room(db, prio, now):
                return None
            needed = 2 if _sampled(item_id, self.double_review) else 1
            item = (item_id, category, score, uncertainty, reach, region, summary, "")
            return self._insert(db, item, "review", None, needed, prio, now)

    def _insert(
        self, db: sqlite3.Connection, item: tuple[Any, ...], kind: str, appeal_of: int | None,
        needed: int, prio: float, now: float,
    ) -> int:  # fmt: skip
        """``item``: (item_id, category, score, uncertainty, reach, region, summary, note)."""
        deadline = now + self._sla[SEVERITY[item[1]]]
        cur = db.execute(
            "INSERT INTO tasks (item_id, category, score, uncertainty, reach, region, summary,"
            " note, kind, appeal_of, priority, created, deadline, needed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*item, kind, appeal_of, prio, now, deadline, needed),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _make_room(self, db: sqlite3.Connection, prio: float, now: float) -> bool:
        (pending,) = db.execute("SELECT count(*) FROM tasks WHERE state = 'pending'").fetchone()
        if pending < self.capacity:
            return True
        lowest = db.execute(
            "SELECT id, priority FROM tasks WHERE state = 'pending' AND (lease_until IS NULL"
            " OR lease_until <= ?) ORDER BY priority, id DESC LIMIT 1",
            (now,),
        ).fetchone()
        if lowest is None or prio <= lowest[1]:
            _count(db, "dropped")
            return False
        db.execute("UPDATE tasks SET state = 'evicted', summary = '' WHERE id = ?", (lowest[0],))
        return True

    def claim(
        self, reviewer: str, *, senior: bool = False, now: float | None = None
    ) -> Task | None:
        """Lease the most urgent task ``reviewer`` may judge (tier 2 only for a senior, and
        first); ``None`` when there is none. Tasks past their deadline are escalated first."""
        now = self.clock() if now is None else now
        with self._write() as db:
            db.execute(
                "UPDATE tasks SET escalated = 1, tier = 2 WHERE state = 'pending'"
                " AND deadline <= ? AND escalated = 0",
                (now,),
            )
            row = db.execute(
                _CLAIMABLE, {"tier": 2 if senior else 1, "now": now, "who": reviewer}
            ).fetchone()
            if row is None:
                return None
            until = now + self.lease_s
            db.execute(
                "UPDATE tasks SET lease_by = ?, lease_until = ? WHERE id = ?",
                (reviewer, until, row[0]),
            )
        return Task(*(*row[:14], bool(row[14]), until))

    def escalate(self, task_id: int) -> None:
        """Flag a pending task and move it to tier 2 (senior reviewers)."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE tasks SET escalated = 1, tier = 2 WHERE id = ? AND state = 'pending'",
                (task_id,),
            )
            if cur.rowcount == 0:
                raise KeyError(f"No pending review task {task_id}.")

    def verdict(self, task_id: int, reviewer: str, label: str, *, now: float | None = None) -> None:
        """Record ``reviewer``'s verdict on a task they hold (claimed, not reclaimed since)."""
        if label not in LABELS:
            raise ValueError(f"A verdict's label must be one of {LABELS}. Got {label!r}.")
        now = self.clock() if now is None else now
        with self._write() as db:
            row = db.execute(
                "SELECT item_id, state, needed, lease_by FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
            if row is None:
                raise KeyError(f"No review task {task_id}.")
            item_id, state, needed, holder = row
            if state != "pending" or holder != reviewer:
                raise ValueError(
                    f"Reviewer {reviewer!r} does not hold task {task_id} (it is "
                    f"{state}, held by {holder!r}): claim a task first."
                )
            db.execute(
                "INSERT INTO verdicts (task_id, reviewer, label, at) VALUES (?, ?, ?, ?)",
                (task_id, reviewer, label, now),
            )
            verdicts = tuple(Verdict(*v) for v in db.execute(
                "SELECT reviewer, label, at FROM verdicts WHERE task_id = ? ORDER BY seq",
                (task_id,),
            ))  # fmt: skip
            final = _settle(db, task_id, item_id, needed, verdicts, now)
        if final is not None and self.on_final is not None:
            self.on_final(item_id, final, verdicts)

    def appeal(self, item_id: str, note: str, *, now: float | None = None) -> int | None:
        """Put a decided item back for review as an appeal; its task id (the pending one if
        the item is already queued; ``None`` when refused at capacity)."""
        if not isinstance(note, str) or len(note) > 4 * SUMMARY_MAX:
            raise ValueError(
                f"An appeal's note must be text of at most {4 * SUMMARY_MAX} characters."
            )
        now = self.clock() if now is None else now
        with self._write() as db:
            pending = _pending(db, item_id)
            if pending is not None:
                return pending
            last = db.execute(
                "SELECT id, item_id, category, score, uncertainty, reach, region, summary"
                " FROM tasks WHERE item_id = ? AND state = 'final'", (item_id,),
            ).fetchone()  # fmt: skip
            if last is None:
                raise KeyError(f"Item {item_id!r} has no final verdict to appeal.")
            prio = APPEAL_BOOST * priority(last[2], last[5], last[4])
            if not self._make_room(db, prio, now):
                return None
            task = self._insert(db, (*last[1:], note), "appeal", last[0], 1, prio, now)
            db.execute(
                "INSERT OR IGNORE INTO barred SELECT ?, v.reviewer FROM verdicts v JOIN"
                " tasks t ON t.id = v.task_id WHERE t.item_id = ?", (task, item_id),
            )  # fmt: skip
            return task

    def deadline(self, task_id: int) -> float:
        """When a verdict on task ``task_id`` is due (seconds since 1970)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT deadline FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
        if row is None:
            raise KeyError(f"No review task {task_id}.")
        return float(row[0])

    def forget(self, before: float) -> int:
        """Clear what decided tasks kept of their items (summaries, appeal notes) once
        decided before ``before``: the retention period is over. Returns how many."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE tasks SET summary = '', note = '' WHERE state != 'pending' "
                "AND coalesce(decided_at, created) < ? AND (summary != '' OR note != '')",
                (before,),
            )
            return cur.rowcount

    def agreement(self) -> Agreement:
        """Cohen's kappa between the first two verdicts of each double-reviewed task."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT v.task_id, v.label FROM verdicts v JOIN tasks t ON t.id = v.task_id"
                " WHERE t.needed >= 2 ORDER BY v.task_id, v.seq"
            ).fetchall()
        by_task: dict[int, list[str]] = collections.defaultdict(list)
        for task_id, label in rows:
            by_task[task_id].append(label)
        return cohen_kappa([(v[0], v[1]) for v in by_task.values() if len(v) >= 2])

    def labels(self, since: float = 0.0, *, limit: int = 10_000) -> list[tuple[str, str, float]]:
        """The verdicts in force decided after ``since``: ``(item_id, label, decided_at)``,
        oldest first (for retraining and recalibrating thresholds)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT item_id, label, decided_at FROM tasks WHERE state = 'final'"
                " AND decided_at > ? ORDER BY decided_at, id LIMIT ?",
                (since, limit),
            ).fetchall()
        return [(str(i), str(label), float(at)) for i, label, at in rows]

    def stats(self, *, now: float | None = None) -> QueueStats:
        now = self.clock() if now is None else now
        q = self._conn.execute
        with self._lock:
            tiers = dict(
                q("SELECT tier, count(*) FROM tasks WHERE state = 'pending' GROUP BY tier")
            )
            (overdue,) = q(
                "SELECT count(*) FROM tasks WHERE state = 'pending' AND deadline <= ?", (now,)
            ).fetchone()
            waits = [w for (w,) in q(
                "SELECT decided_at - created FROM tasks WHERE decided_at IS NOT NULL"
                " ORDER BY decided_at DESC LIMIT ?", (_MEDIAN_OVER,),
            )]  # fmt: skip
            counts = q(
                "SELECT count(decided_at), sum(escalated), sum(needed = 3), sum(kind = 'appeal'),"
                " sum(state = 'evicted') FROM tasks"
            ).fetchone()
            appeals = q(
                "SELECT a.label != t.label FROM tasks a JOIN tasks t ON t.id = a.appeal_of"
                " WHERE a.decided_at IS NOT NULL"
            ).fetchall()
            dropped = q("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        decided, escalations, disagreements, n_appeals, evicted = (int(c or 0) for c in counts)
        return QueueStats(
            pending={1: tiers.get(1, 0), 2: tiers.get(2, 0)},
            overdue=overdue,
            median_time_to_verdict_s=statistics.median(waits) if waits else None,
            decided=decided,
            escalations=escalations,
            disagreements=disagreements,
            appeals=n_appeals,
            overturned_share=sum(o for (o,) in appeals) / len(appeals) if appeals else None,
            dropped=int(dropped[0]) if dropped else 0,
            evicted=evicted,
        )


def _settle(
    db: sqlite3.Connection, task_id: int, item_id: str, needed: int,
    verdicts: tuple[Verdict, ...], now: float,
) -> str | None:  # fmt: skip
    """Close the task if its verdicts suffice (its final label), else release it for the
    next reviewer; two verdicts that differ call for a senior's (tier 2)."""
    if len(verdicts) < needed:
        db.execute("UPDATE tasks SET lease_by = NULL, lease_until = NULL WHERE id = ?", (task_id,))
        return None
    if needed == 2 and verdicts[0].label != verdicts[1].label:
        db.execute(
            "UPDATE tasks SET needed = 3, tier = 2, lease_by = NULL, lease_until = NULL"
            " WHERE id = ?",
            (task_id,),
        )
        return None
    label = verdicts[-1].label  # agreed, or the senior's deciding verdict
    db.execute(
        "UPDATE tasks SET state = 'superseded', summary = '', note = '' "
        "WHERE item_id = ? AND state = 'final'", (item_id,),
    )  # fmt: skip
    db.execute(
        "UPDATE tasks SET state = 'final', label = ?, decided_at = ?, lease_by = NULL,"
        " lease_until = NULL WHERE id = ?",
        (label, now, task_id),
    )
    return label


def _pending(db: sqlite3.Connection, item_id: str) -> int | None:
    row = db.execute(
        "SELECT id FROM tasks WHERE item_id = ? AND state = 'pending'", (item_id,)
    ).fetchone()
    return None if row is None else int(row[0])


def _sampled(item_id: str, share: float) -> bool:
    """Whether ``item_id`` is in the double-reviewed share (a hash: the same every run)."""
    h = int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:8], "big")
    return h / 2**64 < share


def _count(db: sqlite3.Connection, name: str) -> None:
    db.execute(
        "INSERT INTO counters VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1",
        (name,),
    )


def _check_item(
    item_id: str, category: str, score: float, uncertainty: float, reach: int, region: str,
    summary: str,
) -> None:  # fmt: skip
    if not isinstance(item_id, str) or not 0 < len(item_id) <= 256:
        raise ValueError(f"'item_id' must be text of 1-256 characters. Got {item_id!r:.80}.")
    if category not in CATEGORIES:
        raise ValueError(f"'category' must be one of {CATEGORIES}. Got {category!r:.80}.")
    for name, value in (("score", score), ("uncertainty", uncertainty)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"{name!r} must be a number within [0, 1]. Got {value!r:.80}.")
    if isinstance(reach, bool) or not isinstance(reach, int) or reach < 0:
        raise ValueError(f"'reach' must be an integer >= 0 (an audience). Got {reach!r:.80}.")
    if not isinstance(region, str) or not 0 < len(region) <= 32:
        raise ValueError(f"'region' must be text of 1-32 characters. Got {region!r:.80}.")
    if not isinstance(summary, str) or len(summary) > SUMMARY_MAX:
        raise ValueError(f"'summary' must be text of at most {SUMMARY_MAX} characters.")
