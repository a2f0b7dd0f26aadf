"""The deadline pipeline: every item is accounted for (published, late, overflowed or
failed), late and dropped items still reach ``on_late`` on the stage's own thread, and a
failing stage drops its item, not the pipeline."""

from __future__ import annotations

import threading
import time
from typing import Any

from loopline.edge.stages import Stage, StagePipeline


class Track:
    """A stage with state, like a tracker: which items it saw run, which it predicted."""

    def __init__(self) -> None:
        self.ran: list[int] = []
        self.predicted: list[int] = []
        self.threads: set[int] = set()

    def run(self, value: Any) -> Any:
        self.threads.add(threading.get_ident())
        self.ran.append(value)
        return value

    def late(self, seq: int) -> None:
        self.threads.add(threading.get_ident())
        self.predicted.append(seq)


def test_items_come_out_in_order_within_the_deadline() -> None:
    out: list[tuple[int, Any, float]] = []
    beats: list[str] = []

    def beat(name: str, error: BaseException | None) -> None:
        assert error is None
        beats.append(name)

    track = Track()
    p = StagePipeline(
        [Stage("double", lambda v: v * 2), Stage("track", track.run, track.late)],
        lambda seq, v, ms: out.append((seq, v, ms)), deadline_ms=1000, beat=beat,
    ).start()  # fmt: skip
    for i in range(20):
        p.submit(i)
        time.sleep(0.002)
    p.stop()
    assert [v for _, v, _ in out] == [2 * i for i in range(20)]
    assert all(0 <= ms < 1000 for _, _, ms in out)
    assert p.counts.published == 20
    assert p.counts.miss_rate() == 0.0
    assert beats.count("double") == beats.count("track") == 20
    assert track.predicted == []


def test_late_items_are_dropped_and_the_stateful_stage_predicts_through_them() -> None:
    out: list[int] = []
    track = Track()

    def slow(v: int) -> int:
        time.sleep(0.03 if v % 4 == 0 else 0.0)  # every fourth item takes 30 ms
        return v

    p = StagePipeline(
        [Stage("detect", slow), Stage("track", track.run, track.late)],
        lambda seq, v, ms: out.append(v), deadline_ms=20, queue_size=4,
    ).start()  # fmt: skip
    for i in range(40):
        p.submit(i)
        time.sleep(0.035)  # slower than the slow stage: no queueing, only lateness
    p.stop()
    c = p.counts
    assert c.late == 10, c  # the ten slow ones end past 20 ms
    assert all(v % 4 != 0 for v in out)
    assert len(out) == 30
    assert sorted(track.ran) == out, "the tracker saw every frame that was published"
    assert track.predicted == list(range(0, 40, 4)), "and predicted through the late ones"
    assert c.published + c.late + c.overflow + c.errors == c.submitted == 40


def test_a_full_queue_drops_its_oldest_and_later_stages_see_the_gap() -> None:
    track = Track()
    gate = threading.Event()

    def blocked(v: int) -> int:
        gate.wait(5)
        return v

    p = StagePipeline(
        [Stage("detect", blocked), Stage("track", track.run, track.late)],
        lambda seq, v, ms: None, deadline_ms=10_000, queue_size=2,
    ).start()  # fmt: skip
    for i in range(10):
        p.submit(i)
        time.sleep(0.005)  # the first is taken by the blocked stage; the rest pile up
    gate.set()
    p.stop()
    c = p.counts
    assert c.overflow >= 6, c
    assert c.published + c.late + c.overflow + c.errors == 10
    assert sorted(track.ran + track.predicted) == list(range(10)), "each item once"
    assert len(track.threads) == 1, "the tracker's state is touched by its own thread only"


def test_a_failing_stage_drops_its_item_and_the_pipeline_goes_on() -> None:
    errors: list[tuple[str, BaseException]] = []
    out: list[int] = []

    def fragile(v: int) -> int:
        if v == 3:
            raise ValueError("bad frame")
        return v

    p = StagePipeline(
        [Stage("detect", fragile)], lambda seq, v, ms: out.append(v), deadline_ms=1000,
        beat=lambda name, exc: errors.append((name, exc)) if exc is not None else None,
    ).start()  # fmt: skip
    for i in range(6):
        p.submit(i)
        time.sleep(0.005)
    p.stop()
    assert out == [0, 1, 2, 4, 5]
    assert p.counts.errors == 1
    assert errors[0][0] == "detect"
    assert "bad frame" in str(errors[0][1])


def test_a_late_item_dropped_downstream_is_counted_once() -> None:
    gate = threading.Event()
    p = StagePipeline(
        [Stage("a", lambda v: v), Stage("b", lambda v: gate.wait(5) and v)],
        lambda seq, v, ms: None, deadline_ms=10, queue_size=1,
    ).start()  # fmt: skip
    for i in range(10):
        p.submit(i, born=time.perf_counter() - 1.0)  # already a second old: late
        time.sleep(0.005)
    gate.set()
    assert p.stop()
    c = p.counts
    assert c.late == 10
    assert c.overflow == 0, "a late item a full queue drops was already counted"
    assert c.published + c.late + c.overflow + c.errors == 10


def test_a_failing_sink_is_an_error_and_the_pipeline_goes_on() -> None:
    out: list[int] = []

    def sink(seq: int, v: int, ms: float) -> None:
        if v == 2:
            raise OSError("planner unreachable")
        out.append(v)

    p = StagePipeline([Stage("a", lambda v: v)], sink, deadline_ms=1000).start()
    for i in range(5):
        p.submit(i)
        time.sleep(0.005)
    assert p.stop(timeout_s=2), "every thread ended"
    assert out == [0, 1, 3, 4]
    assert p.counts.errors == 1
    assert p.counts.published == 4
