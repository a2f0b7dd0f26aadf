"""``loopline scenario drift``: a new fraud pattern starts mid-stream, and the platform
notices, retrains and promotes without a human (a simulation, in accelerated time).

The simulated world (``full`` profile) runs through the real parts: the fraud service's
streaming path (online features, model, rules, prediction log) reads the transactions
topic of an embedded event log; labels arrive late on their own topic, feed the terminal
risk features and the prediction log's labels; the champion's drift monitor compares the last day of
decisions with its training reference; :class:`RetrainingLoop` watches the triggers and
moves challengers through shadow, gate, canary and champion, recording every step in the
registry. Only the clock is simulated: time advances an hour per step.

Timeline, in days of the simulation:

* 0-36: history only, so that 30-day windows are full, those of the labels too (genuine
  labels start arriving on day 7);
* 37-64: the first champion's validation (7 days) and training (21) data, trained on day
  72, once those days' labels were in; the online state is built from days 0-71;
* 72: the stream starts;
* 72 + ``change_after_days``: ``card_enumeration`` starts (a pattern the champion never
  saw; see :mod:`loopline.apps.fraud.simulator`);
* ``days_after_change`` later: the end.

The control runs the same procedure on a world without the change for ``control_days``;
every alert it raises is a false alarm.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from loopline.apps.fraud import data
from loopline.apps.fraud.labels import FraudLabels
from loopline.apps.fraud.publish import TOPICS, to_message
from loopline.apps.fraud.retrain import History, train_at
from loopline.apps.fraud.service import (
    GATE_TASK,
    ServeOptions,
    build,
    stream_scorer,
)
from loopline.apps.fraud.simulator import (
    SCENARIOS,
    START_MS,
    Profile,
    Simulation,
    profile,
    simulate,
)
from loopline.demos.fraud import scenario_report
from loopline.events import Codec, open_log
from loopline.feedback import Policy, RetrainingLoop, Trigger, paired_p99_ms
from loopline.predictions import Label
from loopline.registry import Registry
from loopline.serving import KeyRing
from loopline.units import DAY_MS, HOUR_MS

STREAM_DAY = 72
NEW_SCENARIO = "card_enumeration"
MODEL = "fraud"


@dataclass(frozen=True, kw_only=True)
class ScenarioOptions:
    customers: int = 2000
    seed: int = 0
    change_after_days: int = 3
    days_after_change: int = 24
    control_days: int = 30
    share: float = 0.3  # card_enumeration per genuine transaction, once it started
    check_hours: int = 1  # drift check and retraining-loop tick every this many hours
    policy: Policy = field(default_factory=Policy)
    progress: bool = True


def run(
    options: ScenarioOptions, *, workdir: Path | None = None, report: Path | None = None
) -> dict[str, Any]:
    """Run the change and the control; return what happened (see ``loopline scenario
    drift --json``), and write the HTML ``report``."""
    with tempfile.TemporaryDirectory(prefix="loopline-scenario-") as tmp:
        root = workdir or Path(tmp)
        change_day = STREAM_DAY + options.change_after_days
        base = profile("full", customers=options.customers)
        changed = changed_world(options, options.days_after_change)
        control = replace(base, days=STREAM_DAY + options.control_days)
        with progress_bar(options.progress) as progress:
            change = StreamedWorld(
                simulate(changed, seed=options.seed), root / "change", options, progress
            )
            change.stream(change.days)
            quiet = StreamedWorld(
                simulate(control, seed=options.seed), root / "control", options, progress
            )
            quiet.stream(quiet.days)
        return _summary(change, quiet, change_day, options, report)


def changed_world(options: ScenarioOptions, days_after_change: int) -> Profile:
    """The ``full`` profile with ``card_enumeration`` starting after the stream does."""
    change_day = STREAM_DAY + options.change_after_days
    return replace(
        profile("full", customers=options.customers),
        days=change_day + days_after_change,
        scenarios=SCENARIOS[1:],
        starts=((NEW_SCENARIO, change_day),),
        enumeration_share=options.share,
    )


class StreamedWorld:
    """One simulated world streamed through the service, with the retraining loop."""

    def __init__(
        self,
        sim: Simulation,
        root: Path,
        options: ScenarioOptions,
        progress: Any,
        keys: KeyRing | None = None,
    ) -> None:
        self.sim, self.root, self.options, self.progress = sim, root, options, progress
        self.days = sim.profile.days
        self.policy = options.policy
        task = progress.add_task(f"{root.name}: features and first champion", total=None)
        self.history = History.of(data.histories(sim.transactions, sim.labels))
        self.registry = Registry(root=root / "registry")
        self.start_ms = START_MS + STREAM_DAY * DAY_MS
        train_at(self.history, self.start_ms, registry=self.registry, seed=sim.seed)
        progress.remove_task(task)
        self.now_ms = self.start_ms
        (root / "serving").mkdir(parents=True)
        (keys or KeyRing([])).save(root / "serving" / "keys.json")  # none: the stream only
        self.built = build(
            ServeOptions(
                state=root / "serving",
                registry=self.registry.uri,
                watch_s=0,
                drift_s=0,
                events=f"file://{(root / 'serving' / 'events.db').resolve()}",
                tracing=False,
            )
        )
        built = self.built
        built.pipeline.clock = lambda: self.now_ms / 1000
        built.drift.retarget(built.deployment.routing.champion)  # on this clock
        self.log = open_log(f"file://{(root / 'stream.db').resolve()}")
        for topic in ("transactions", "labels"):
            self.log.create_topic(topic, partitions=1)
        self.scorer = stream_scorer(built, self.log)
        self.labels = FraudLabels(built.engine, self.log, built.log)
        self.scoring_s = 0.0  # time spent in the streaming scorer
        self.loop = RetrainingLoop(
            policy=self.policy,
            registry=self.registry,
            model=MODEL,
            rollout=built.deployment,
            train=self._train,
            outcomes=built.log,
            metric=GATE_TASK.metric,
            check_drift=built.drift.check,
            latency=self._latency,
        )
        self._codecs: dict[str, Codec[Any]] = {t: Codec(e) for t, e in TOPICS.items()}
        self._tx_times = sim.transactions["event_time_ms"].to_numpy()
        self._label_times = sim.labels["label_time_ms"].to_numpy()
        self._warm_up()

    def _warm_up(self) -> None:
        """The online state and the labels from the days before the stream, as a
        backfill: transactions and labels applied to the online views directly."""
        engine = self.built.engine
        n = int(np.searchsorted(self._tx_times, self.start_ms))
        tx = data.histories(self.sim.transactions.slice(0, n), self.sim.labels)["transactions"]
        engine.update_many(data.columns(tx), topic="transactions")
        m = int(np.searchsorted(self._label_times, self.start_ms))
        labels = self.sim.labels.slice(0, m)
        engine.update_many(data.columns(labels), topic="labels")
        self.built.log.add_labels(
            (
                Label(t, 1.0 if f >= 0.5 else 0.0, at)
                for t, f, at in zip(
                    labels["transaction_id"].to_pylist(),
                    labels["is_fraud"].to_pylist(),
                    labels["label_time_ms"].to_pylist(),
                    strict=True,
                )
            ),
            keep="max",
        )

    def stream(self, until_day: int) -> None:
        """Hour by hour until ``until_day``: publish what happened in the hour, score it,
        take in the labels, and every ``check_hours`` tick the retraining loop."""
        end_ms = START_MS + until_day * DAY_MS
        hours = (end_ms - self.now_ms) // HOUR_MS
        task = self.progress.add_task(f"{self.root.name}: streaming", total=hours)
        for hour in range(hours):
            lo, hi = self.now_ms, self.now_ms + HOUR_MS
            self._publish(
                "transactions", self._between(self.sim.transactions, self._tx_times, lo, hi)
            )
            self._publish("labels", self._between(self.sim.labels, self._label_times, lo, hi))
            self.now_ms = hi
            self._drain()
            if (hour + 1) % self.options.check_hours == 0:
                self.loop.tick(self.now_ms)
            self.progress.advance(task)
        self.built.pipeline.close()

    def _drain(self) -> None:
        self.labels.run_once()
        started = time.perf_counter()
        while self.scorer.run_once():
            pass
        self.scoring_s += time.perf_counter() - started

    @staticmethod
    def _between(table: pa.Table, times: np.ndarray, lo: int, hi: int) -> pa.Table:
        a, b = np.searchsorted(times, [lo, hi])
        return table.slice(int(a), int(b - a))

    def _publish(self, topic: str, table: pa.Table) -> None:
        codec = self._codecs[topic]
        keep = [c for c in table.column_names if c in codec.schema.__struct_fields__]
        messages = [to_message(codec, topic, row) for row in table.select(keep).to_pylist()]
        for lo in range(0, len(messages), 5000):
            self.log.append_many(topic, messages[lo : lo + 5000])

    def _train(self, now_ms: int, trigger: Trigger) -> int:
        return train_at(self.history, now_ms, registry=self.registry, seed=self.sim.seed).version

    def _latency(self) -> tuple[float, float]:
        """The champion's and the challenger's p99 time to score one of the last 1,000
        decisions' features, timed in turns."""
        routing = self.built.deployment.routing
        assert routing.challenger is not None
        rows = [msgspec.json.decode(r.inputs) for r in self.built.log.recent(1000)]
        return paired_p99_ms(
            routing.champion.predict,
            routing.challenger.predict,
            _matrix(rows, list(routing.champion.signature.inputs)),
            _matrix(rows, list(routing.challenger.signature.inputs)),
        )

    def decisions(self) -> pa.Table:
        """Every decision with the simulation's ground truth (scenario) joined."""
        joined = self.built.log.joined()
        table = pa.table(
            {
                "transaction_id": joined.request_ids,
                "decided_ms": joined.decided_ms,
                "decision": [o["decision"] for o in joined.outputs],
                "model_version": joined.model_versions,
                "arm": joined.arms,
                "score": [o["score"] for o in joined.outputs],
            }
        )
        truth = self.sim.transactions.select(["transaction_id", "scenario", "is_fraud"])
        return table.join(truth, "transaction_id")

    def close(self) -> None:
        self.built.close()
        self.log.close()


def _matrix(rows: list[dict[str, float]], names: list[str]) -> np.ndarray:
    return np.array(
        [[np.nan if (v := r.get(n)) is None else v for n in names] for r in rows], dtype=np.float64
    )


def _summary(
    change: StreamedWorld,
    quiet: StreamedWorld,
    change_day: int,
    options: ScenarioOptions,
    report: Path | None,
) -> dict[str, Any]:
    change_ms = START_MS + change_day * DAY_MS
    steps = change.registry.history(MODEL)
    drift = [at for at, kind, _ in change.loop.alerts if kind == "drift" and at >= change_ms]
    canary = [s.at_ms for s in steps if s.action == "start canary" and s.passed]
    promoted = [s.at_ms for s in steps if s.action == "promote to champion" and s.version > 1]
    decided = change.decisions()
    new = decided.filter(pc.equal(decided["scenario"], NEW_SCENARIO))
    first_traffic = min([*canary, *promoted, change.now_ms])
    before = _recall(new, change_ms, first_traffic)
    after = _recall(new, promoted[0], change.now_ms) if promoted else None
    result: dict[str, Any] = {
        "drift_detected_after_hours": (drift[0] - change_ms) / HOUR_MS if drift else None,
        "promoted": bool(promoted),
        "promoted_after_days": (promoted[0] - change_ms) / DAY_MS if promoted else None,
        "recall_new_scenario_before": before,
        "recall_new_scenario_after": after,
        "false_alarms_control": len(quiet.loop.alerts),
        "control_days": options.control_days,
        "drift_checks_control": quiet.loop.drift_checks,
        "drift_checks": change.loop.drift_checks,
        "alerts_before_change": sum(at < change_ms for at, _, _ in change.loop.alerts),
        "alerts": [scenario_report.alert_row(a) for a in change.loop.alerts],
        "control_alerts": [scenario_report.alert_row(a) for a in quiet.loop.alerts],
        "history": scenario_report.steps_of(steps),
        "settings": {
            "customers": options.customers,
            "seed": options.seed,
            "share": options.share,
            "change_day": change_day,
            "days_after_change": options.days_after_change,
            "new_scenario": NEW_SCENARIO,
            "policy": vars(options.policy),
        },
    }
    if report is not None:
        series = scenario_report.daily(decided, NEW_SCENARIO, START_MS)
        result["report"] = str(scenario_report.write(report, result, series))
    for run_ in (change, quiet):
        run_.close()
    return result


def _recall(new: pa.Table, lo: int, hi: int) -> float | None:
    t = new["decided_ms"].to_numpy()
    mine = (t >= lo) & (t < hi)
    if not mine.any():
        return None
    flagged = np.asarray(new["decision"].to_numpy(zero_copy_only=False))[mine] != "approve"
    return float(flagged.mean())


def progress_bar(show: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not show,
    )
