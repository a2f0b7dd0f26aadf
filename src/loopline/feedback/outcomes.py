"""Late labels into the prediction log, and performance as the labels mature.

Labels arrive after their predictions (a chargeback days later, a click minutes later,
a reviewer's verdict), possibly twice. :class:`LabelFeed` reads them from a topic into
the prediction log's labels, keeping how far it read in the same transaction, so a
restart resumes exactly. :func:`matured_performance` joins them to the predictions
and scores each day with the task's metrics; a day is *provisional* until
``maturity_ms`` after its end, because its late labels may still come.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loopline.events import EventLog, Record, TopicPartition
from loopline.exceptions import TopicNotFoundError
from loopline.predictions import Keep, Label, Outcomes
from loopline.tasks import Task
from loopline.units import DAY_MS


class LabelFeed:
    """Labels from ``topic`` of ``log`` into ``outcomes`` (the prediction log's labels).

    Args:
        decode: The labels a batch of records carries (the application's format).
        keep: Which value wins for a request labelled twice (see
            :meth:`loopline.predictions.Outcomes.add_labels`).
    """

    def __init__(
        self,
        log: EventLog,
        outcomes: Outcomes,
        *,
        topic: str,
        decode: Callable[[Sequence[Record]], list[Label]],
        keep: Keep = "latest",
        max_records: int = 5000,
    ) -> None:
        try:
            log.partitions(topic)
        except TopicNotFoundError:
            log.create_topic(topic, partitions=1)
        self.log, self.outcomes, self.topic = log, outcomes, topic
        self.decode, self.keep, self.max_records = decode, keep, max_records

    def run_once(self) -> int:
        """Take in what has arrived; return how many records were read."""
        read = 0
        for p in range(self.log.partitions(self.topic)):
            tp = TopicPartition(self.topic, p)
            while records := self.log.read(
                tp, self.outcomes.label_offset(self.topic, p), max_records=self.max_records
            ):
                position = (self.topic, p, records[-1].offset + 1)
                self.outcomes.add_labels(self.decode(records), keep=self.keep, position=position)
                read += len(records)
        return read


@dataclass(frozen=True)
class DayPerformance:
    day: int  # days since the epoch (UTC)
    segment: str | None  # the segment's value, when split by one
    predictions: int
    labelled: int
    metrics: dict[str, float]  # the task's report over the labelled predictions
    provisional: bool


def matured_performance(
    outcomes: Outcomes,
    task: Task,
    *,
    now_ms: int,
    maturity_ms: int = 7 * DAY_MS,
    since_ms: int = 0,
    segment: str | None = None,
) -> list[DayPerformance]:
    """Per prediction day since ``since_ms`` (and per segment: a prediction-log column,
    or ``input:<name>``): the task's metrics over the predictions whose labels have
    arrived."""
    joined = outcomes.joined(decided_from_ms=since_ms, segment=segment)
    groups: dict[tuple[int, str | None], list[int]] = {}
    for i, (at, value) in enumerate(zip(joined.decided_ms, joined.segments, strict=True)):
        groups.setdefault((at // DAY_MS, value), []).append(i)
    out = []
    for (day, value), rows in sorted(groups.items(), key=lambda g: (g[0][0], str(g[0][1]))):
        known = [i for i in rows if joined.labels[i]]
        out.append(
            DayPerformance(
                day=day,
                segment=value,
                predictions=len(rows),
                labelled=len(known),
                metrics=task.report(
                    [joined.outputs[i] for i in known], [joined.labels[i] for i in known]
                ),
                provisional=now_ms < (day + 1) * DAY_MS + maturity_ms,
            )
        )
    return out
