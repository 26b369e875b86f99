"""The shared storage link against a brute-force processor-sharing reference, on random transfer sets."""

from __future__ import annotations

import math
import random

import pytest
import simpy

from simulator.loop import Coroutine, run, spawn
from simulator.storage import SharedLink

from link_driver import drive


def reference(groups: list[tuple[float, list[tuple[float, float]]]], bandwidth: float,
              sharing: float = 2.0) -> list[float]:
    """Each group's value (max over its transfers of completion + latency), by stepping a fluid model.

    ``groups``: (start time, [(bytes, latency), ...]).  Between two events (an arrival or a
    completion) every active transfer receives ``bandwidth / active`` bytes per second, or with
    two or more active and a ``sharing`` factor, ``bandwidth * 2 / sharing / active``.
    """
    arrivals = sorted((start, g, k, nbytes, lat) for g, (start, items) in enumerate(groups)
                      for k, (nbytes, lat) in enumerate(items))
    remaining: dict[tuple[int, int], list[float]] = {}
    value = [start for start, _ in groups]
    t, a = 0.0, 0
    while a < len(arrivals) or remaining:
        next_arrival = arrivals[a][0] if a < len(arrivals) else math.inf
        if remaining:
            share = (bandwidth if len(remaining) < 2 else bandwidth * 2 / sharing) / len(remaining)
            key = min(remaining, key=lambda k: remaining[k][0])
            next_done = t + remaining[key][0] / share
        else:
            share, next_done = 0.0, math.inf
        step_to = min(next_arrival, next_done)
        for left in remaining.values():
            left[0] -= (step_to - t) * share
        t = step_to
        if next_done <= next_arrival:
            g, _ = key
            value[g] = max(value[g], t + remaining.pop(key)[1])
        else:
            start, g, k, nbytes, lat = arrivals[a]
            remaining[(g, k)] = [nbytes, lat]
            a += 1
    return value


def simulate_link(groups, bandwidth: float, coroutines: bool = False,
                  sharing: float = 2.0) -> tuple[list[float], list[float]]:
    """(each group's value, the time it was delivered) through SharedLink: to SimPy processes waiting for
    the returned events, or (``coroutines``) to the simulator's loop coroutines registered as waiters."""
    return drive(lambda env: SharedLink(env, bandwidth, sharing), groups, coroutines)


@pytest.mark.parametrize("seed", range(12))
def test_random_transfers_match_the_fluid_reference(seed: int) -> None:
    rng = random.Random(seed)
    bandwidth = rng.choice([10.0, 100.0, 1e6])
    sharing = 2.0 if seed < 6 else rng.choice([1.0, 1.7, rng.uniform(1, 2)])   # the host probe's factor too
    groups = []
    for _ in range(rng.randint(1, 40)):
        start = round(rng.uniform(0, 5), rng.choice([0, 1, 3]))        # ties on purpose
        items = [(rng.choice([1.0, 10.0, rng.uniform(1, 50)]) * bandwidth / 10, rng.choice([0.0, 0.01, 0.3]))
                 for _ in range(rng.randint(1, 4))]
        groups.append((start, items))
    expected = reference(groups, bandwidth, sharing)
    values, fired = simulate_link(groups, bandwidth, sharing=sharing)
    assert values == pytest.approx(expected, rel=1e-9, abs=1e-9)
    # waking the simulator's coroutines instead of firing events: the same values at the same times
    assert simulate_link(groups, bandwidth, coroutines=True, sharing=sharing) == (values, fired)
    # the event fires at the last transfer's completion (its latency is in the value, not in the firing)
    for (start, items), v, f in zip(groups, values, fired):
        assert start - 1e-9 <= f <= v + 1e-9


def test_two_equal_transfers_share_then_the_survivor_speeds_up() -> None:
    # 100 B/s; a: 100 B at t=0; b: 300 B at t=0.5.  a alone 0.5 s (50 B), then shares: 50 B at 50 B/s -> 1.5;
    # b got 50 B by 1.5, then 250 B alone at 100 B/s -> 4.0
    values, _ = simulate_link([(0.0, [(100.0, 0.0)]), (0.5, [(300.0, 0.0)])], 100.0)
    assert values == pytest.approx([1.5, 4.0])


def test_two_concurrent_transfers_each_take_the_sharing_factor_times_one_alone() -> None:
    # B = 170 B at R = 100 B/s: alone 1.7 s; two at once with f = 1.7 each end at f * B / R = 2.89 s (equal
    # shares, f = 2: 3.4 s); a third transfer after they end is alone again: 100 B from 3.5 -> 4.5
    groups = [(0.0, [(170.0, 0.0)]), (0.0, [(170.0, 0.0)]), (3.5, [(100.0, 0.0)])]
    assert simulate_link(groups, 100.0, sharing=1.7)[0] == pytest.approx([2.89, 2.89, 4.5])
    assert simulate_link(groups, 100.0)[0] == pytest.approx([3.4, 3.4, 4.5])
    # staggered: a (100 B) alone 0.5 s (50 B), then both at 100 * 2 / 1.6 / 2 = 62.5 B/s: a's last 50 B end at
    # 1.3; b (300 B from 0.5) got 50 B by then, its last 250 B alone at 100 B/s end at 3.8
    assert simulate_link([(0.0, [(100.0, 0.0)]), (0.5, [(300.0, 0.0)])], 100.0, sharing=1.6)[0] == pytest.approx(
        [1.3, 3.8])


def test_the_default_sharing_is_the_equal_shares_link_bit_for_bit() -> None:
    rng = random.Random(3)
    groups = [(round(rng.uniform(0, 5), 2), [(rng.uniform(1, 500), rng.choice([0.0, 0.01]))
                                              for _ in range(rng.randint(1, 3))]) for _ in range(30)]
    assert simulate_link(groups, 100.0, sharing=2.0) == simulate_link(groups, 100.0)
    assert SharedLink(simpy.Environment(), 123.0).shared_bandwidth == 123.0


def test_then_delays_the_event_past_the_value() -> None:
    # one 100 B transfer at 100 B/s with 0.25 s latency: value 1.25; then = 0.5 -> fires at 1.75;
    # then = (floor 2.0, 0.1, 0.2) -> fires at (max(1.25, 2.0) + 0.1) + 0.2 = 2.3
    for then, fires in ((None, 1.0), (0.5, 1.75), ((2.0, 0.1, 0.2), 2.3), ((0.5, 0.1, 0.2), 1.55)):
        env = simpy.Environment()
        link = SharedLink(env, 100.0)
        seen = []

        def process():
            value = yield link.transfers([100.0], 0.25, env.now, then)
            seen.append((value, env.now))

        env.process(process())
        run(env, link)
        assert seen == [(pytest.approx(1.25), pytest.approx(fires))]


def test_an_empty_group_is_refused_rather_than_left_pending_forever() -> None:
    env = simpy.Environment()
    with pytest.raises(ValueError, match="at least one transfer"):
        SharedLink(env, 100.0).transfers([], 0.0, 0.0)


@pytest.mark.parametrize("seed", range(8))
def test_transfer_one_is_transfers_of_one_bit_for_bit(seed: int) -> None:
    # the simulator's fast path for a single transfer (every upload, most downloads) must give the same values
    # at the same times as the general call, exactly, among groups of several transfers (ties on purpose)
    rng = random.Random(seed)
    bandwidth = rng.choice([10.0, 100.0, 1e6])
    sharing = 2.0 if seed % 2 == 0 else 1.7
    groups = []
    for _ in range(rng.randint(5, 40)):
        start = round(rng.uniform(0, 5), rng.choice([0, 1, 3]))
        items = [(rng.choice([1.0, 10.0, rng.uniform(1, 50)]) * bandwidth / 10, rng.choice([0.0, 0.01, 0.3]))
                 for _ in range(rng.choice([1, 1, 1, 2, 3]))]
        groups.append((start, items, rng.choice([None, 0.05, (start + 1.0, 0.01, 0.2)])))

    def through(one: bool) -> list[tuple[float, float]]:
        env = simpy.Environment()
        link = SharedLink(env, bandwidth, sharing)
        seen = [(math.nan, math.nan)] * len(groups)

        def coroutine(g: int, start: float, items, then, me: Coroutine):
            yield start
            if one and len(items) == 1:
                link.transfer_one(items[0][0], items[0][1], then, me)
            else:
                link.transfers([b for b, _ in items], [lat for _, lat in items], env.now, then, me)
            value = yield
            seen[g] = (value, env.now)

        for g, (start, items, then) in enumerate(groups):
            spawn(env, coroutine, g, start, items, then)
        run(env, link)
        return seen

    general = through(one=False)
    assert not any(math.isnan(v) for v, _ in general)
    assert through(one=True) == general


def test_a_latest_waiter_keeps_the_latest_completion_and_queues_nothing() -> None:
    # 50 B (latency 0.1) and 100 B (latency 0.2) from t = 0 at 100 B/s, shared: both at 50 B/s until the first
    # ends at 1.0 (held at 1.1); the second's last 50 B alone at 100 B/s end at 1.5 (held at 1.7)
    from simulator.storage import Latest

    env = simpy.Environment()
    link = SharedLink(env, 100.0)
    latest = Latest()
    link.transfer_one(50.0, 0.1, None, latest)
    link.transfer_one(100.0, 0.2, None, latest)
    run(env, link)
    assert latest.value == pytest.approx(1.7)
    assert env.now == 0.0 and not env._queue     # nothing was queued: the clock never moved


def test_equal_marks_complete_in_start_order_across_the_trim_of_finished_transfers() -> None:
    # 300 transfers of 1 B and one of 2 B from t = 0 at 100 B/s: all share until every one has 1 B, at
    # 301 / 100 = 3.01 s, when the 300 complete in the order they started (equal marks); the 2 B one's
    # last byte alone at 100 B/s: 3.02.  Then one of 50 B at t = 4 (after the finished ones were dropped,
    # marks and transfers still in step): alone, 4.5
    env = simpy.Environment()
    link = SharedLink(env, 100.0)
    order: list[tuple[str, float]] = []

    def transfer(name: str, start: float, nbytes: float, me: Coroutine):
        if start > env.now:
            yield start - env.now
        link.transfer_one(nbytes, 0.0, None, me)
        value = yield
        order.append((name, value))

    spawn(env, transfer, "big", 0.0, 2.0)
    for k in range(300):
        spawn(env, transfer, f"t{k}", 0.0, 1.0)
    spawn(env, transfer, "late", 4.0, 50.0)
    run(env, link)
    assert [name for name, _ in order] == [f"t{k}" for k in range(300)] + ["big", "late"]
    assert [v for _, v in order] == pytest.approx([3.01] * 300 + [3.02, 4.5])
    assert link._marks == [a[0] for a in link._active]
