"""The queueing core, compiled with numba: one region's transactions, one at a time.

A Python (or simpy) loop over events costs microseconds an event; 100K transactions a
second for ten minutes is 60 million of them. Here each transaction costs a few heap
operations: a first-come first-served pool of ``c`` servers is a min-heap of the times
its servers become free (the earliest free server takes the next arrival), so a
transaction's wait is ``max(0, earliest_free - arrival)`` (Kiefer-Wolfowitz). Shards and
consumers are single servers (Lindley's recursion). Arrivals are Poisson with a
piecewise-constant rate, drawn as the loop goes, so memory does not grow with time.

A server the autoscaler asked for joins the pool at the time it comes up, before the
first arrival that would otherwise start after that time, so the queue stays first come,
first served and reads reach the shards in the order they started (a start before an
earlier one, possible only if a server comes up faster than the queue's bound, is
counted). The sink takes answers in the order they reach it (a reorder heap); stream
consumers take events in arrival order plus the append's round trip.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# counts[...]: what happened to each arrival
ARRIVED, ANSWERED, FALLBACK, SHED, LOST_DOWN, LOST_IN_FLIGHT, DEADLINE_HITS, TRIPS = range(8)
OUT_OF_ORDER = 8  # a pool start before an earlier one
# sums[...]
WAIT, LATENCY, BUSY, LAG = range(4)
# events_t[bucket, ...]
E_ARRIVED, E_ANSWERED, E_FALLBACK, E_LOST = range(4)
REORDER = 1 << 20  # answers on their way to the sink at once (at most)


@numba.njit(cache=True, nogil=True)
def draw(samples: F64, mean: float) -> float:
    """One service time: a recorded sample at random, else exponential with ``mean``
    (0: none)."""
    if samples.shape[0] > 0:
        return float(samples[np.random.randint(samples.shape[0])])
    if mean <= 0.0:
        return 0.0
    return float(np.random.exponential(mean))


@numba.njit(cache=True, nogil=True)
def sift_down(key: F64, ids: I64, size: int, i: int) -> None:
    while True:
        small, left = i, 2 * i + 1
        if left < size and key[left] < key[small]:
            small = left
        if left + 1 < size and key[left + 1] < key[small]:
            small = left + 1
        if small == i:
            return
        key[i], key[small] = key[small], key[i]
        ids[i], ids[small] = ids[small], ids[i]
        i = small


@numba.njit(cache=True, nogil=True)
def push(key: F64, ids: I64, size: int, k: float, ident: int) -> int:
    """Add ``(k, ident)``; returns the new size."""
    i = size
    key[i], ids[i] = k, ident
    while i > 0:
        parent = (i - 1) // 2
        if key[parent] <= key[i]:
            break
        key[i], key[parent] = key[parent], key[i]
        ids[i], ids[parent] = ids[parent], ids[i]
        i = parent
    return size + 1


@numba.njit(cache=True, nogil=True)
def fifo_waits(arrivals: F64, services: F64, servers: int) -> F64:
    """Each arrival's wait in a first-come first-served pool of ``servers`` (arrivals
    sorted; ``services[i]`` the i-th arrival's service time)."""
    key, ids = np.zeros(servers), np.arange(servers)
    waits = np.empty(len(arrivals))
    for i in range(len(arrivals)):
        start = max(arrivals[i], key[0])
        waits[i] = start - arrivals[i]
        key[0] = start + services[i]
        sift_down(key, ids, servers, 0)
    return waits


@numba.njit(cache=True, nogil=True)
def bin_of(x: float, lo: float, per_decade: float, n: int) -> int:
    if x <= 0.0:
        return 0
    b = int((math.log10(x) - lo) * per_decade)
    return min(max(b, 0), n - 1)


@numba.njit(cache=True, nogil=True)
def down_until(shard: int, x: float, o_shard: I64, o_t0: F64, o_t1: F64) -> float:
    """When the outage of ``shard`` that covers time ``x`` ends; -1 if none does."""
    for j in range(len(o_shard)):
        if o_shard[j] == shard and o_t0[j] <= x < o_t1[j]:
            return float(o_t1[j])
    return -1.0


@numba.njit(cache=True, nogil=True)
def next_arrival(t: float, rate_t: F64, rate_v: F64, seg: I64) -> float:
    """The next arrival of a Poisson process whose rate is ``rate_v[i]`` from
    ``rate_t[i]`` on (memoryless: a draw that crosses a change restarts there);
    ``seg[0]``: the segment ``t`` is in, moved on as time passes."""
    while True:
        i = seg[0]
        rate = rate_v[i]
        edge = rate_t[i + 1] if i + 1 < len(rate_t) else np.inf
        nxt = t + np.random.exponential(1.0 / rate) if rate > 0 else np.inf
        if nxt < edge:
            return float(nxt)
        if edge == np.inf:
            return float(np.inf)
        t, seg[0] = edge, i + 1


@numba.njit(cache=True, nogil=True)
def run_region(  # noqa: C901
    seed: int,
    rate_t: F64,
    rate_v: F64,
    pool_p: F64,
    f_samples: F64,
    f_mean: float,
    l_samples: F64,
    l_mean: float,
    store_p: F64,
    s_samples: F64,
    s_mean: float,
    s_rtt: F64,
    s_rtt_mean: float,
    o_shard: I64,
    o_t0: F64,
    o_t1: F64,
    sink_p: F64,
    k_samples: F64,
    k_mean: float,
    k_rtt: F64,
    k_rtt_mean: float,
    stream_p: F64,
    w_samples: F64,
    w_mean: float,
    a_samples: F64,
    a_mean: float,
    hist_p: F64,
    hist: I64,
    hist_t: I64,
    lag_hist: I64,
    counts: I64,
    sums: F64,
    events_t: I64,
    servers_t: F64,
) -> None:
    """One region's transactions from time 0 to ``pool_p[7]``: arrivals, the pool
    (with shedding, autoscaling and its death), the store shards behind each server's
    circuit breaker, the sink, and, beside the answer, the stream consumers. Fills the
    output arrays (see :mod:`loopline.capacity.model` for what each parameter is)."""
    np.random.seed(seed)
    c0, cmax, max_wait = int(pool_p[0]), int(pool_p[1]), pool_p[2]
    period, target, delay, dead_at, t_end = pool_p[3], pool_p[4], pool_p[5], pool_p[6], pool_p[7]
    n_shards, deadline, to_open = int(store_p[0]), store_p[1], int(store_p[2])
    reset, partitions = store_p[3], int(store_p[4])
    n_sink, n_cons = int(sink_p[0]), int(stream_p[0])
    lo, per_decade, n_bins, bucket_s = hist_p[0], hist_p[1], int(hist_p[2]), hist_p[3]
    n_buckets = hist_t.shape[0]
    # the pool: a heap of (free at, server id); servers waiting to come up
    key, ids = np.zeros(cmax), np.zeros(cmax, dtype=np.int64)
    size = 0
    for i in range(c0):
        size = push(key, ids, size, 0.0, i)
    next_id, pending = c0, np.zeros(cmax)
    p_head, p_tail = 0, 0
    fails, open_until = np.zeros(cmax, dtype=np.int64), np.zeros(cmax)
    shard_free = np.zeros(max(n_shards, 1))
    last_start = 0.0  # the latest start so far (starts are first come, first served)
    sink_key, sink_ids = np.zeros(max(n_sink, 1)), np.zeros(max(n_sink, 1), dtype=np.int64)
    cons_free = np.zeros(max(n_cons, 1))
    # answers on their way to the sink, in the order they reach it (a heap of
    # (reaches the sink at, slot)); a slot holds the arrival time and whether it fell back
    r_key, r_ids = np.zeros(REORDER), np.zeros(REORDER, dtype=np.int64)
    r_size, free_slots = 0, np.arange(REORDER)[::-1].copy()
    n_free, arrived_at, fell_back = REORDER, np.zeros(REORDER), np.zeros(REORDER, dtype=np.bool_)
    hist_args = (lo, per_decade, n_bins, bucket_s, dead_at)
    next_check, busy = period, 0.0
    seg = np.zeros(1, dtype=np.int64)
    t = next_arrival(0.0, rate_t, rate_v, seg)
    while t < t_end:
        # autoscaling: every period, the HPA rule on the busy share of the servers
        while period > 0 and t >= next_check:
            util = busy / (size * period) if size > 0 else 1.0
            want = min(math.ceil(size * util / target), cmax)
            for _ in range(want - size - (p_tail - p_head)):
                pending[p_tail] = next_check + delay
                p_tail += 1
            busy, next_check = 0.0, next_check + period
        # a server that comes up before this arrival could start takes it (first come,
        # first served: it is up before this arrival and every later one starts)
        while p_head < p_tail and pending[p_head] <= max(t, key[0]):
            size = push(key, ids, size, pending[p_head], next_id)
            next_id, p_head = next_id + 1, p_head + 1
        b = min(int(t / bucket_s), n_buckets - 1)
        servers_t[b] = max(servers_t[b], size)
        counts[ARRIVED] += 1
        events_t[b, E_ARRIVED] += 1
        if t >= dead_at:
            counts[LOST_DOWN] += 1
            events_t[b, E_LOST] += 1
            t = next_arrival(t, rate_t, rate_v, seg)
            continue
        part = np.random.randint(partitions)
        if n_cons > 0:  # the event's way into the state, beside the answer
            w = part % n_cons
            c_start = max(t + draw(a_samples, a_mean), cons_free[w])
            if n_shards > 0:
                back = down_until(part % n_shards, c_start, o_shard, o_t0, o_t1)
                c_start = back if back >= 0 else c_start
            cons_free[w] = c_start + draw(w_samples, w_mean)
            sums[LAG] += cons_free[w] - t
            lag_hist[bin_of(cons_free[w] - t, lo, per_decade, n_bins)] += 1
        start = max(t, key[0])
        if start - t > max_wait:  # the bounded queue is full: answered 503
            counts[SHED] += 1
            events_t[b, E_LOST] += 1
            t = next_arrival(t, rate_t, rate_v, seg)
            continue
        if start < last_start:
            counts[OUT_OF_ORDER] += 1
        last_start = max(last_start, start)
        sid = ids[0]
        s = draw(f_samples, f_mean)
        key[0] = start + s
        sift_down(key, ids, size, 0)
        busy += s
        sums[BUSY] += s
        sums[WAIT] += start - t
        store, fallback = 0.0, False
        if n_shards > 0:
            if open_until[sid] > start:  # breaker open: no read, rules alone
                fallback = True
            else:
                shard = part % n_shards
                ok = down_until(shard, start, o_shard, o_t0, o_t1) < 0
                if ok:
                    shard_free[shard] = max(start, shard_free[shard]) + draw(s_samples, s_mean)
                    store = shard_free[shard] - start + draw(s_rtt, s_rtt_mean)
                    ok = store <= deadline
                if ok:
                    fails[sid] = 0
                else:
                    store, fallback = deadline, True
                    counts[DEADLINE_HITS] += 1
                    fails[sid] += 1
                    if fails[sid] >= to_open:  # opens (again, if its half-open try failed)
                        counts[TRIPS] += 1
                        open_until[sid] = start + deadline + reset
        # the caller waits the request's own time in service (its awaits included),
        # which may be longer than the core is held for it
        done = start + store + (draw(l_samples, l_mean) if l_samples.shape[0] or l_mean else s)
        if n_sink == 0:
            answer(t, done, fallback, hist_args, hist, hist_t, counts, sums, events_t)
        else:
            if n_free == 0:  # the reorder buffer is full: the earliest goes now
                r_size, n_free = to_sink(r_key, r_ids, r_size, free_slots, n_free, arrived_at,
                                         fell_back, sink_key, sink_ids, n_sink, k_samples,
                                         k_mean, k_rtt, k_rtt_mean, hist_args, hist, hist_t,
                                         counts, sums, events_t)  # fmt: skip
            n_free -= 1
            slot = free_slots[n_free]
            arrived_at[slot], fell_back[slot] = t, fallback
            r_size = push(r_key, r_ids, r_size, done, slot)
            # every later answer reaches the sink after its own start, >= this start
            while r_size > 0 and r_key[0] <= start:
                r_size, n_free = to_sink(r_key, r_ids, r_size, free_slots, n_free, arrived_at,
                                         fell_back, sink_key, sink_ids, n_sink, k_samples,
                                         k_mean, k_rtt, k_rtt_mean, hist_args, hist, hist_t,
                                         counts, sums, events_t)  # fmt: skip
        t = next_arrival(t, rate_t, rate_v, seg)
    while r_size > 0:
        r_size, n_free = to_sink(r_key, r_ids, r_size, free_slots, n_free, arrived_at, fell_back,
                                 sink_key, sink_ids, n_sink, k_samples, k_mean, k_rtt,
                                 k_rtt_mean, hist_args, hist, hist_t, counts, sums,
                                 events_t)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def to_sink(
    r_key: F64,
    r_ids: I64,
    r_size: int,
    free_slots: I64,
    n_free: int,
    arrived_at: F64,
    fell_back: npt.NDArray[np.bool_],
    sink_key: F64,
    sink_ids: I64,
    n_sink: int,
    k_samples: F64,
    k_mean: float,
    k_rtt: F64,
    k_rtt_mean: float,
    hist_args: tuple[float, float, int, float, float],
    hist: I64,
    hist_t: I64,
    counts: I64,
    sums: F64,
    events_t: I64,
) -> tuple[int, int]:
    """The answer that reaches the sink first: written (first come, first served on the
    sink's servers), then answered."""
    reached, slot = r_key[0], r_ids[0]
    r_size -= 1
    r_key[0], r_ids[0] = r_key[r_size], r_ids[r_size]
    sift_down(r_key, r_ids, r_size, 0)
    free_slots[n_free] = slot
    written = max(reached, sink_key[0]) + draw(k_samples, k_mean)
    sink_key[0] = written
    sift_down(sink_key, sink_ids, n_sink, 0)
    done = written + draw(k_rtt, k_rtt_mean)
    answer(arrived_at[slot], done, fell_back[slot], hist_args, hist, hist_t, counts, sums, events_t)
    return r_size, n_free + 1


@numba.njit(cache=True, nogil=True)
def answer(
    t: float,
    done: float,
    fallback: bool,
    hist_args: tuple[float, float, int, float, float],
    hist: I64,
    hist_t: I64,
    counts: I64,
    sums: F64,
    events_t: I64,
) -> None:
    """Count an answer (or its loss, if its region was lost before it was done)."""
    lo, per_decade, n_bins, bucket_s, dead_at = hist_args
    b = min(int(t / bucket_s), hist_t.shape[0] - 1)
    if done > dead_at:
        counts[LOST_IN_FLIGHT] += 1
        events_t[b, E_LOST] += 1
        return
    latency = done - t
    counts[ANSWERED] += 1
    counts[FALLBACK] += fallback
    events_t[b, E_ANSWERED] += 1
    events_t[b, E_FALLBACK] += fallback
    sums[LATENCY] += latency
    hb = bin_of(latency, lo, per_decade, n_bins)
    hist[hb] += 1
    hist_t[b, hb] += 1
