"""Closed forms of the M/M/c queue: what the simulation is checked against and what a
plan sizes a pool with. Plain arithmetic: importing them compiles nothing."""

from __future__ import annotations


def erlang_c(servers: int, offered: float) -> float:
    """The probability that an arrival waits in an M/M/c queue with ``servers`` and
    ``offered`` load (arrival rate times mean service time, < servers), by Erlang B's
    recursion (``B_k = a B_(k-1) / (k + a B_(k-1))``, then ``C = c B / (c - a (1 - B))``):
    no ``a^k / k!`` terms, so it holds for fleets of thousands of servers."""
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return servers * b / (servers - offered * (1 - b))


def mmc_mean_wait(rate: float, mean_service: float, servers: int) -> float:
    """The mean wait in queue of M/M/c (Erlang C)."""
    offered = rate * mean_service
    return erlang_c(servers, offered) * mean_service / (servers - offered)
