"""Driving a storage link (``simulator.storage.SharedLink`` or ``RankedLink``) with groups of transfers, for the
link tests: each group ``(start, [(bytes, latency), ...])`` starts at ``start`` and waits for its one wake-up."""

from __future__ import annotations

import math
from typing import Any, Callable

import simpy

from simulator.loop import Coroutine, run, spawn


def drive(make_link: Callable[[simpy.Environment], Any], groups, coroutines: bool = False,
          one_by_transfer_one: bool = False) -> tuple[list[float], list[float]]:
    """(each group's value, the time it was delivered) through the link ``make_link`` builds: to SimPy processes
    waiting for the returned events, or (``coroutines``) to the simulator's loop coroutines registered as waiters
    (``one_by_transfer_one``: a group of one through ``transfer_one``, the simulator's usual call)."""
    env = simpy.Environment()
    link = make_link(env)
    values, fired = [math.nan] * len(groups), [math.nan] * len(groups)

    def process(g: int, start: float, items):
        yield env.timeout(start)
        values[g] = yield link.transfers([b for b, _ in items], [lat for _, lat in items], env.now)
        fired[g] = env.now

    def coroutine(g: int, start: float, items, me: Coroutine):
        yield start
        if one_by_transfer_one and len(items) == 1:
            link.transfer_one(items[0][0], items[0][1], None, me)
        else:
            link.transfers([b for b, _ in items], [lat for _, lat in items], env.now, None, me)
        values[g] = yield
        fired[g] = env.now

    for g, (start, items) in enumerate(groups):
        if coroutines:
            spawn(env, coroutine, g, start, items)
        else:
            env.process(process(g, start, items))
    run(env, link)
    return values, fired
