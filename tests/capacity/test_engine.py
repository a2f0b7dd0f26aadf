"""The capacity engine against closed-form queueing results and simpy, and the
behaviour of its failure modes (shedding, a lost region, a lost shard, autoscaling)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopline.capacity import (
    Distribution,
    Outage,
    Pool,
    Region,
    Shards,
    Sink,
    Stream,
    Traffic,
    fifo_waits,
    mmc_mean_wait,
    simulate,
)
from loopline.exceptions import ConfigError


def _pool(servers: int, mean: float) -> Region:
    return Region(pool=Pool(servers=servers, service=Distribution.exponential(mean)))


@pytest.mark.parametrize(("servers", "rate"), [(1, 0.8), (4, 3.0), (16, 14.0)])
def test_mean_wait_matches_erlang_c(servers: int, rate: float) -> None:
    result = simulate(_pool(servers, 1.0), Traffic.steady(rate), seconds=400_000, seed=3)
    expected = mmc_mean_wait(rate, 1.0, servers)
    assert result.counts["answered"] > 300_000
    assert result.mean_wait_s() == pytest.approx(expected, rel=0.06)


def test_mm1_latency_quantile_is_exponential() -> None:
    # M/M/1 sojourn is exponential with rate mu - lambda: its q-quantile -ln(1 - q) / 0.5
    result = simulate(_pool(1, 1.0), Traffic.steady(0.5), seconds=1_000_000, seed=5)
    for q in (0.5, 0.9, 0.99):
        expected = -math.log(1 - q) / 0.5
        assert result.quantile_ms(q) / 1000 == pytest.approx(expected, rel=0.06)


def test_the_pool_is_the_same_queue_as_simpy() -> None:
    simpy = pytest.importorskip("simpy")
    rng = np.random.default_rng(0)
    arrivals = np.cumsum(rng.exponential(1.0, 2000))
    services = rng.lognormal(0.5, 0.8, 2000)
    ours = fifo_waits(arrivals, services, 3)

    env = simpy.Environment()
    desk = simpy.Resource(env, capacity=3)
    waits = np.zeros(len(arrivals))

    def customer(i: int) -> object:
        yield env.timeout(arrivals[i])
        with desk.request() as turn:
            asked = env.now
            yield turn
            waits[i] = env.now - asked
            yield env.timeout(services[i])

    for i in range(len(arrivals)):
        env.process(customer(i))
    env.run()
    assert ours.max() > 1.0  # it queued
    np.testing.assert_allclose(ours, waits, atol=1e-9)


def _full(**more: object) -> Region:
    return Region(
        pool=Pool(servers=4, service=Distribution.exponential(0.004), max_wait_s=0.05),
        shards=Shards(count=4, service=Distribution.constant(20e-6),
                      round_trip=Distribution.exponential(300e-6)),
        sink=Sink(servers=2, service=Distribution.constant(50e-6),
                  round_trip=Distribution.exponential(500e-6)),
        stream=Stream(partitions=8, consumers=4, service=Distribution.exponential(100e-6),
                      append=Distribution.constant(1e-3)),
        partitions=8,
        **more,  # type: ignore[arg-type]
    )  # fmt: skip


def _conserved(result: object) -> bool:
    c = result.counts  # type: ignore[attr-defined]
    return bool(c["arrived"] == c["answered"] + c["shed"] + c["lost_down"] + c["lost_in_flight"])


def test_nothing_is_lost_without_a_cause() -> None:
    steady = simulate(_full(), Traffic.steady(600.0), seconds=200, seed=1)
    assert _conserved(steady)
    assert steady.lost == 0
    assert steady.counts["fallback"] == 0
    # overload: the bounded queue sheds; every arrival is answered or shed
    over = simulate(_full(), Traffic.steady(1500.0), seconds=200, seed=1)
    assert _conserved(over)
    assert over.counts["shed"] > 0.3 * over.counts["arrived"]
    assert over.counts["lost_down"] == over.counts["lost_in_flight"] == 0
    assert over.quantile_ms(0.99) < 50 + 4 * 4 + 30  # shedding bounds the wait


def test_a_lost_region_loses_what_it_held_and_what_came_after() -> None:
    result = simulate(_full(down_at_s=100.0), Traffic.steady(600.0), seconds=200, seed=2)
    assert _conserved(result)
    assert result.counts["lost_down"] == pytest.approx(600 * 100, rel=0.05)
    assert 0 < result.counts["lost_in_flight"] < 60  # a few ms of traffic in flight
    buckets = result.events_t
    assert buckets[: 100 // 5 - 1, 3].sum() == 0  # nothing lost before (but in flight)
    assert buckets[100 // 5 + 1 :, 1].sum() == 0  # nothing answered after


def test_a_lost_shard_falls_back_without_losses_and_recovers() -> None:
    outage = Outage(shard=1, start_s=50.0, end_s=80.0)
    result = simulate(_full(outages=(outage,)), Traffic.steady(600.0), seconds=150, seed=4)
    assert _conserved(result)
    assert result.lost == 0
    fallbacks = result.events_t[:, 2]
    assert fallbacks[: 50 // 5].sum() == 0
    # a quarter of reads fail at once; the breakers open and answer from the rules
    during = result.events_t[50 // 5 : 80 // 5]
    assert fallbacks[50 // 5 : 80 // 5].sum() > 0.25 * during[:, 1].sum()
    assert result.counts["breaker_trips"] > 0
    assert fallbacks[(80 + 5) // 5 :].sum() == 0  # closed again after its reset
    assert result.quantile_ms(0.999) < 20 + 60  # a failed read costs the deadline, no more
    # the consumers of the lost shard's partitions waited for it, then caught up
    assert result.quantile_ms(1.0, of="lag") / 1000 > 20


def test_the_autoscaler_adds_servers_after_its_delay() -> None:
    pool = Pool(servers=2, service=Distribution.exponential(0.01), max_servers=40,
                max_wait_s=0.1, scale_period_s=15, scale_target=0.7, scale_delay_s=35)  # fmt: skip
    traffic = Traffic(times=(0.0, 60.0), rates=(100.0, 1000.0))
    result = simulate(Region(pool=pool), traffic, seconds=600, seed=6)
    assert _conserved(result)
    up = result.servers_t
    assert up[: 60 // 5].max() == 2
    assert up[60 // 5 : (60 + 35) // 5].max() == 2  # still coming up
    # the HPA rule asks for at most 1 / 0.7 times the servers up, so it climbs in steps
    assert up[(60 + 50) // 5] <= math.ceil(2 / 0.7)
    assert up[-1] >= 1000 * 0.01 / 0.7  # enough at the end
    late = result.events_t[-10:]
    assert late[:, 3].sum() == 0  # no more shedding once scaled


def test_the_sink_adds_little_when_it_is_lightly_loaded() -> None:
    result = simulate(_full(), Traffic.steady(300.0), seconds=300, seed=7)
    mean = result.sums[1] / result.counts["answered"]
    floor = 0.004 + 20e-6 + 300e-6 + 50e-6 + 500e-6
    assert floor < mean < floor * 1.25


def test_configuration_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="servers must be >= 1"):
        Pool(servers=0, service=Distribution.constant(1.0))
    with pytest.raises(ConfigError, match="consumers must be 1 to partitions"):
        Stream(partitions=2, consumers=3, service=Distribution.constant(1.0),
               append=Distribution.constant(0.0))  # fmt: skip
    with pytest.raises(ConfigError, match="finite seconds"):
        Distribution.of([-1.0])
    with pytest.raises(ConfigError, match="times must increase"):
        Traffic(times=(0.0, 0.0), rates=(1.0, 2.0))


def test_a_request_may_wait_longer_than_it_holds_the_core() -> None:
    # 10 % busy on 1 ms of core a request, but each caller waits 50 ms (its own awaits)
    pool = Pool(servers=1, service=Distribution.constant(0.001),
                latency=Distribution.constant(0.05))  # fmt: skip
    result = simulate(Region(pool=pool), Traffic.steady(100.0), seconds=200, seed=8)
    assert result.quantile_ms(0.5) == pytest.approx(50, rel=0.05)
    assert result.sums[2] / 200 == pytest.approx(0.1, rel=0.05)  # the core's busy share


def test_the_breaker_counts_every_trip_its_half_open_tries_included() -> None:
    # one server, one shard down for 30 s: it opens after 3 failed reads, then every
    # ~2 s its half-open read fails again and opens it again
    region = Region(
        pool=Pool(servers=1, service=Distribution.constant(1e-4)),
        shards=Shards(count=1, service=Distribution.constant(1e-5),
                      round_trip=Distribution.constant(1e-4), deadline_s=0.02,
                      failures_to_open=3, reset_after_s=2.0),
        outages=(Outage(shard=0, start_s=10.0, end_s=40.0),),
    )  # fmt: skip
    result = simulate(region, Traffic.steady(200.0), seconds=60, seed=9)
    expected = 1 + 30 / 2.02  # the first trip, then one a reset
    assert result.counts["breaker_trips"] == pytest.approx(expected, abs=1.5)


def test_servers_that_come_up_under_a_queue_keep_it_first_come_first_served() -> None:
    # a 10x step with reads behind every request: the new servers take the queue's
    # head, not the next arrival, so reads reach the shards in the order they started
    pool = Pool(servers=2, service=Distribution.exponential(0.01), max_servers=40,
                max_wait_s=0.1, scale_period_s=15, scale_target=0.7, scale_delay_s=35)  # fmt: skip
    region = Region(
        pool=pool,
        shards=Shards(count=4, service=Distribution.constant(20e-6),
                      round_trip=Distribution.exponential(300e-6)),
        partitions=8,
    )  # fmt: skip
    result = simulate(region, Traffic(times=(0.0, 60.0), rates=(100.0, 1000.0)), seconds=400,
                      seed=6)  # fmt: skip
    assert _conserved(result)
    assert result.servers_t[-1] >= 1000 * 0.01 / 0.7  # it scaled, under a queue
    assert result.counts["shed"] > 0
    assert result.counts["out_of_order_starts"] == 0
    assert result.counts["fallback"] == 0  # no read waited behind later ones


def test_an_incident_window_holds_its_latency_undiluted() -> None:
    outage = Outage(shard=1, start_s=50.0, end_s=80.0)
    result = simulate(_full(outages=(outage,)), Traffic.steady(600.0), seconds=150, seed=4)
    # the failed reads (each costs the deadline) raise the tail during the outage; the
    # whole run's p99 dilutes that with the minutes around it
    before = result.window_quantile_ms(0.99, 0.0, 50.0)
    during = result.window_quantile_ms(0.99, 50.0, 80.0)
    assert during > 1.15 * result.quantile_ms(0.99) > 1.15 * before
    assert math.isnan(result.window_quantile_ms(0.99, 200.0, 260.0))  # none then
