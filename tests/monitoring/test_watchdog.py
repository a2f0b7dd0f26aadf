"""The watchdog: heartbeats with levels, timeouts, the reduction to the worst level, the
history of changes, on an injected clock."""

from __future__ import annotations

import threading

import pytest

from loopline.exceptions import ConfigError
from loopline.monitoring.watchdog import Change, Level, Watchdog


class Clock:
    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        return self.t


def test_levels_are_ordered_like_ros_diagnostics_so_the_worst_is_the_max() -> None:
    assert Level.OK < Level.WARN < Level.ERROR < Level.TIMEOUT
    assert max([Level.WARN, Level.OK, Level.ERROR]) is Level.ERROR


def test_the_overall_level_is_the_worst_with_the_faults_worst_first() -> None:
    dog = Watchdog(clock=Clock())
    for name in ("reader", "scorer", "writer"):
        dog.register(name, timeout_ms=100)
    assert dog.check(10).level is Level.OK
    assert dog.check(10).faults == ()
    dog.beat("reader", Level.WARN, "slow", now_ms=20)
    dog.beat("scorer", Level.ERROR, "no model", now_ms=30)
    dog.beat("writer", now_ms=30)
    health = dog.check(40)
    assert health.level is Level.ERROR
    assert [s.component for s in health.faults] == ["scorer", "reader"]
    assert health.reasons == ("scorer: ERROR no model", "reader: WARN slow")
    dog.beat("scorer", now_ms=50)
    assert dog.check(60).level is Level.WARN


def test_a_silent_component_times_out_after_its_timeout_and_recovers_on_a_beat() -> None:
    dog = Watchdog(clock=Clock())
    dog.register("reader", timeout_ms=100)
    dog.register("writer", timeout_ms=1000)
    dog.beat("reader", now_ms=50)
    assert dog.check(150).level is Level.OK  # exactly the timeout: not older than it
    health = dog.check(151)
    assert health.level is Level.TIMEOUT
    (status,) = health.faults
    assert (status.component, status.since_ms, status.last_beat_ms) == ("reader", 50, 50)
    assert "no heartbeat for 101 ms (timeout 100 ms)" in status.message
    dog.beat("reader", now_ms=160)
    assert dog.check(170).level is Level.OK


def test_a_timeout_outranks_an_error_and_keeps_the_last_message() -> None:
    dog = Watchdog(clock=Clock())
    dog.register("reader", timeout_ms=100)
    dog.register("scorer", timeout_ms=100)
    dog.beat("reader", Level.ERROR, "disk full", now_ms=10)
    dog.beat("scorer", Level.ERROR, "bad input", now_ms=90)
    health = dog.check(150)
    assert [(s.component, s.level) for s in health.faults] == [
        ("reader", Level.TIMEOUT),
        ("scorer", Level.ERROR),
    ]
    assert health.faults[0].message.endswith("last: ERROR disk full")


def test_the_onset_is_kept_while_the_level_stays_and_reset_when_it_changes() -> None:
    dog = Watchdog(clock=Clock())
    dog.register("input", timeout_ms=100)
    dog.beat("input", Level.ERROR, "bad", now_ms=100, onset_ms=40)
    dog.beat("input", Level.ERROR, "bad", now_ms=130, onset_ms=120)
    assert dog.check(140).faults[0].since_ms == 40
    dog.beat("input", Level.WARN, "better", now_ms=150)
    assert dog.check(160).faults[0].since_ms == 150
    dog.beat("input", Level.ERROR, "worse", now_ms=170, onset_ms=900)  # never in the future
    assert dog.check(180).faults[0].since_ms == 170


def test_the_clock_is_used_when_no_time_is_given() -> None:
    clock = Clock()
    dog = Watchdog(clock=clock)
    clock.t = 1000
    dog.register("reader", timeout_ms=100)
    clock.t = 1050
    dog.beat("reader", Level.WARN)
    clock.t = 1100
    assert dog.check().faults[0].since_ms == 1050
    clock.t = 1151
    assert dog.check().level is Level.TIMEOUT


def test_the_history_records_each_change_once_and_is_bounded() -> None:
    dog = Watchdog(max_changes=4, clock=Clock())
    dog.register("reader", timeout_ms=100)
    dog.beat("reader", Level.WARN, "slow", now_ms=10)
    dog.beat("reader", Level.WARN, "slow", now_ms=20)  # no change
    dog.check(30)
    dog.check(200)
    dog.check(300)  # still timed out: no new change
    assert dog.history() == [
        Change(10, "reader", Level.WARN, "slow"),
        Change(30, None, Level.WARN, "reader: WARN slow"),
        Change(200, "reader", Level.TIMEOUT, dog.history()[2].message),
        Change(200, None, Level.TIMEOUT, dog.history()[3].message),
    ]
    assert dog.history()[2].message.startswith("no heartbeat for 180 ms")
    dog.beat("reader", now_ms=310)
    dog.check(320)
    assert [(c.t_ms, c.component, c.level) for c in dog.history()] == [
        (200, "reader", Level.TIMEOUT),
        (200, None, Level.TIMEOUT),
        (310, "reader", Level.OK),
        (320, None, Level.OK),
    ]


def test_misuse_names_the_component_and_the_fix() -> None:
    dog = Watchdog(clock=Clock())
    dog.register("reader", timeout_ms=100)
    with pytest.raises(ConfigError, match=r"No component 'writer'.*registered: reader.*register"):
        dog.beat("writer")
    with pytest.raises(ConfigError, match=r"'reader' is already registered"):
        dog.register("reader", timeout_ms=100)
    with pytest.raises(ConfigError, match=r"'scorer' must be a positive.*Got 0"):
        dog.register("scorer", timeout_ms=0)
    with pytest.raises(ConfigError, match=r"'max_changes'.*Got 0"):
        Watchdog(max_changes=0)


def test_beats_from_many_threads_while_checking_lose_nothing() -> None:
    dog = Watchdog(max_changes=100_000, clock=Clock())
    names = [f"worker-{i}" for i in range(4)]
    for name in names:
        dog.register(name, timeout_ms=10**9)
    start = threading.Barrier(len(names) + 1)

    def work(name: str) -> None:
        start.wait()
        for i in range(2000):
            dog.beat(name, Level.WARN if i % 2 else Level.OK, now_ms=i)
        dog.beat(name, Level.ERROR, "done", now_ms=2000)

    threads = [threading.Thread(target=work, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    start.wait()
    while any(thread.is_alive() for thread in threads):
        dog.check(1000)
    for thread in threads:
        thread.join()
    health = dog.check(2001)
    assert sorted(s.component for s in health.faults) == names
    assert {s.level for s in health.faults} == {Level.ERROR}
    per_component = [c for c in dog.history() if c.component == names[0]]
    assert len(per_component) == 2000  # every change of level, none lost, none doubled
