"""Late labels joined to the prediction log, and performance as the labels mature.

Labels (chargebacks: fraud; closed dispute windows: genuine) arrive days after their
decisions, possibly twice. :class:`LabelBook` keeps one label per transaction id: a
fraud label wins over a genuine one (a chargeback after a confirmation is still fraud),
and a repeated label changes nothing. :func:`matured_performance` joins them to the
decisions by transaction id and scores each decision day; a day is *provisional* until
``maturity_ms`` after its end, because its late labels may still come.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

DAY_MS = 86_400_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    transaction_id TEXT PRIMARY KEY,
    is_fraud INTEGER NOT NULL,
    label_time_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""


@dataclass(frozen=True)
class Label:
    transaction_id: str
    is_fraud: bool
    label_time_ms: int


class LabelBook:
    """Labels by transaction id, in SQLite next to the prediction log."""

    def __init__(self, path: Path) -> None:
        # used by one thread at a time: the service's event loop, wherever it runs
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(SCHEMA)

    def offset(self, topic: str, partition: int) -> int:
        """The next offset of a labels topic's partition to read into the book."""
        row = self.conn.execute(
            "SELECT next_offset FROM positions WHERE topic = ? AND partition = ?",
            (topic, partition),
        ).fetchone()
        return int(row[0]) if row else 0

    def add(self, labels: Iterable[Label], *, position: tuple[str, int, int] | None = None) -> int:
        """Store labels; return how many changed a stored one (new, or genuine -> fraud).
        ``position`` (topic, partition, next offset): where they were read up to, kept in
        the same transaction."""
        self.conn.execute("BEGIN")
        if position is not None:
            self.conn.execute(
                """INSERT INTO positions VALUES (?, ?, ?) ON CONFLICT (topic, partition)
                   DO UPDATE SET next_offset = excluded.next_offset""",
                position,
            )
        before = self.conn.total_changes
        self.conn.executemany(
            """INSERT INTO labels (transaction_id, is_fraud, label_time_ms) VALUES (?, ?, ?)
               ON CONFLICT (transaction_id) DO UPDATE SET
                 is_fraud = excluded.is_fraud, label_time_ms = excluded.label_time_ms
               WHERE excluded.is_fraud > is_fraud""",
            [(x.transaction_id, int(x.is_fraud), x.label_time_ms) for x in labels],
        )
        self.conn.execute("COMMIT")
        return self.conn.total_changes - before

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class DayPerformance:
    day: int  # days since the epoch (UTC)
    segment: str | None  # the segment's value, when split by one
    decisions: int
    labelled: int
    frauds: int
    precision: float  # of review + decline, among labelled decisions
    recall: float
    average_precision: float
    provisional: bool


SEGMENT_COLUMNS = ("model_version", "arm", "decision", "rules_version")


def matured_performance(
    decisions_db: Path,
    labels: LabelBook,
    *,
    now_ms: int,
    maturity_ms: int = 7 * DAY_MS,
    segment: str | None = None,
) -> list[DayPerformance]:
    """Per decision day (and per segment): precision and recall of flagging (review or
    decline) and the average precision of the scores, over the decisions whose label has
    arrived.

    ``segment``: a column of the log (``model_version``, ``arm``, ``decision``,
    ``rules_version``), or ``feature:<name>`` for the value of a logged feature (e.g.
    ``feature:channel_cnp``)."""
    args: tuple[str, ...] = ()
    if segment is None:
        by = "NULL"
    elif segment in SEGMENT_COLUMNS:
        by = f"d.{segment}"
    elif segment.startswith("feature:"):
        by, args = "json_extract(d.features, ?)", (f"$.{segment.removeprefix('feature:')}",)
    else:
        raise ValueError(
            f"segment={segment!r}: use one of {list(SEGMENT_COLUMNS)} or 'feature:<name>'."
        )
    labels.conn.execute("ATTACH DATABASE ? AS log", (str(decisions_db),))
    try:
        rows = labels.conn.execute(
            f"""SELECT d.decided_ms / 86400000, {by}, d.decision, d.score, l.is_fraud
                FROM log.decisions d LEFT JOIN labels l USING (transaction_id)
                ORDER BY 1""",
            args,
        ).fetchall()
    finally:
        labels.conn.execute("DETACH DATABASE log")
    out = []
    groups = sorted({(r[0], r[1]) for r in rows}, key=lambda g: (g[0], str(g[1])))
    for day, value in groups:
        mine = [r[:1] + r[2:] for r in rows if r[0] == day and r[1] == value]
        known = [r for r in mine if r[3] is not None]
        y = np.array([r[3] for r in known], dtype=int)
        flagged = np.array([r[1] != "approve" for r in known])
        scores = np.array([r[2] for r in known], dtype=float)
        tp = int((flagged & (y == 1)).sum())
        out.append(
            DayPerformance(
                day=int(day),
                segment=None if value is None else str(value),
                decisions=len(mine),
                labelled=len(known),
                frauds=int(y.sum()),
                precision=tp / max(1, int(flagged.sum())),
                recall=tp / max(1, int(y.sum())),
                average_precision=average_precision(y, scores),
                provisional=now_ms < (day + 1) * DAY_MS + maturity_ms,
            )
        )
    return out


def matured_scores(
    decisions_db: Path,
    labels: LabelBook,
    *,
    model_version: str,
    decided_from_ms: int,
    decided_until_ms: int,
    labelled_before_ms: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and model scores (before rules) of ``model_version``'s decisions in a
    period, for those whose label had arrived by ``labelled_before_ms``."""
    labels.conn.execute("ATTACH DATABASE ? AS log", (str(decisions_db),))
    try:
        rows = labels.conn.execute(
            """SELECT l.is_fraud, d.model_score
               FROM log.decisions d JOIN labels l USING (transaction_id)
               WHERE d.model_version = ? AND d.model_score IS NOT NULL
                 AND d.decided_ms >= ? AND d.decided_ms < ? AND l.label_time_ms < ?""",
            (model_version, decided_from_ms, decided_until_ms, labelled_before_ms),
        ).fetchall()
    finally:
        labels.conn.execute("DETACH DATABASE log")
    got = np.array(rows, dtype=np.float64).reshape(-1, 2)
    return got[:, 0].astype(np.int8), got[:, 1]


def average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = y[order] == 1
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at[hits].mean())


def labels_from_json(raw: Iterable[bytes]) -> list[Label]:
    """Labels from the ``labels`` topic's records (the simulator's Label events)."""
    out = []
    for value in raw:
        d = msgspec.json.decode(value)
        out.append(Label(d["transaction_id"], float(d["is_fraud"]) >= 0.5, int(d["label_time_ms"])))
    return out
