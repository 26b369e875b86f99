"""``Platform.storage_first_come``: the link favours the transfers in flight longer (:class:`RankedLink`).

Hand-computed on a 100 B/s link (the link's total rate unchanged; of two in flight the first gets ``(1 + p) / 2``):

* two 100 B transfers from t = 0, ``p = 1`` (first come first served): 1.0 and 2.0; ``p = 0.5``: the first at
  75 B/s ends at 4/3, the second got 25 * 4/3 = 33.3 B, its 66.7 B left alone take 2/3: 2.0;
* the second starting 0.5 s later, ``p = 0.5``: the first alone 50 B, then 50 B at 75 B/s: 0.5 + 2/3; the second
  got 25 * 2/3 = 16.7 B by then, 83.3 B alone: 2.0;
* with ``storage_sharing = 1.6`` (the two move 125 B/s together) and ``p = 0.6``: the first at 0.8 * 125 = 100 B/s
  ends at 1.0; the second got 25 B, 75 B alone: 1.75.
"""

from __future__ import annotations

import math
import random

import pytest
import simpy

from planning.costs.cost_model import CostModel
from planning.errors import ConfigError
from planning.plan import Plan
from planning.profiles import load_catalog
from planning.protocol.optimizations import optimize
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import Platform, simulate
from simulator.engine import Run
from simulator.loop import Coroutine, run, spawn
from simulator.storage import Latest, RankedLink, SharedLink, link_for
from simulator.transfers import plain_transfers

from link_driver import drive

MB = 1_000_000
CATALOG = load_catalog("local")


def reference(groups: list[tuple[float, list[tuple[float, float]]]], bandwidth: float, sharing: float,
              p: float) -> list[float]:
    """Each group's value by stepping a fluid model: between two events every transfer in flight, ranked by its
    start (ties in the groups' order, then within the group), weighs ``q ** rank`` (``q = (1 - p) / (1 + p)``) and
    gets that share of the link's rate (``bandwidth`` alone, ``bandwidth * 2 / sharing`` with two or more)."""
    arrivals = sorted(((start, g, k, nbytes, lat) for g, (start, items) in enumerate(groups)
                       for k, (nbytes, lat) in enumerate(items)), key=lambda a: (a[0], a[1], a[2]))
    q = (1 - p) / (1 + p)
    flying: list[list] = []          # [bytes left, group, latency] in start order
    value = [start for start, _ in groups]
    t, a = 0.0, 0
    while a < len(arrivals) or flying:
        rates = []
        if flying:
            weights = [q ** k for k in range(len(flying))]
            total = bandwidth if len(flying) == 1 else bandwidth * 2 / sharing
            rates = [w / sum(weights) * total for w in weights]
        finish = [f[0] / r if r > 0 else math.inf for f, r in zip(flying, rates)]
        next_done = t + min(finish) if finish else math.inf
        next_arrival = arrivals[a][0] if a < len(arrivals) else math.inf
        step_to = min(next_done, next_arrival)
        for f, r in zip(flying, rates):
            f[0] -= (step_to - t) * r
        t = step_to
        if next_done <= next_arrival:
            done = flying.pop(finish.index(min(finish)))
            value[done[1]] = max(value[done[1]], t + done[2])
        else:
            start, g, k, nbytes, lat = arrivals[a]
            flying.append([nbytes, g, lat])
            a += 1
    return value


def through(link_cls, groups, bandwidth: float, sharing: float = 2.0, p: float = 0.0,
            coroutines: bool = False) -> tuple[list[float], list[float]]:
    """(each group's value, when it was delivered) through a link of ``link_cls`` driven by the simulator's loop."""
    def make(env):
        return link_cls(env, bandwidth, sharing) if link_cls is SharedLink else link_cls(env, bandwidth, sharing, p)

    return drive(make, groups, coroutines, one_by_transfer_one=True)


def ranked(groups, p: float, sharing: float = 2.0) -> list[float]:
    return through(RankedLink, groups, 100.0, sharing, p)[0]


def test_two_transfers_started_together() -> None:
    together = [(0.0, [(100.0, 0.0)]), (0.0, [(100.0, 0.0)])]
    assert ranked(together, 1.0) == pytest.approx([1.0, 2.0])
    assert ranked(together, 0.5) == pytest.approx([4 / 3, 2.0])
    assert ranked(together, 0.0) == pytest.approx([2.0, 2.0])          # equal shares
    assert ranked(together, 0.6, sharing=1.6) == pytest.approx([1.0, 1.75])


def test_the_earlier_transfer_keeps_its_lead_at_any_offset() -> None:
    assert ranked([(0.0, [(100.0, 0.0)]), (0.5, [(100.0, 0.0)])], 0.5) == pytest.approx([0.5 + 2 / 3, 2.0])
    # first come first served: a later transfer waits for every one before it; a transfer alone moves at the full rate
    three = [(0.0, [(100.0, 0.0)]), (0.1, [(100.0, 0.0)]), (0.2, [(100.0, 0.0)]), (5.0, [(50.0, 0.25)])]
    assert ranked(three, 1.0) == pytest.approx([1.0, 2.0, 3.0, 5.75])


def test_a_group_wakes_once_when_its_last_transfer_ends_whatever_their_order() -> None:
    # one group of (300 B, 100 B) at 0 and a 100 B transfer at 0.5, first come first served: the group's 300 B end at
    # 3.0, its 100 B after them at 4.0 (ranked behind the first), the single after the group's both: 5.0.  The
    # group's value is its last completion plus latency; it is delivered once, at 4.0 (``then`` None).
    values, fired = through(RankedLink, [(0.0, [(300.0, 0.0), (100.0, 0.1)]), (0.5, [(100.0, 0.0)])], 100.0,
                            p=1.0)
    assert values == pytest.approx([4.1, 5.0])
    assert fired == pytest.approx([4.0, 5.0])


@pytest.mark.parametrize("seed", range(10))
def test_random_transfers_match_the_ranked_fluid_reference(seed: int) -> None:
    rng = random.Random(seed)
    p = rng.choice([1.0, 0.5, rng.uniform(0.01, 1.0)])
    sharing = rng.choice([2.0, 1.7, rng.uniform(1.0, 2.0)])
    groups = []
    for _ in range(rng.randint(1, 30)):
        start = round(rng.uniform(0, 5), rng.choice([0, 1, 3]))        # ties on purpose
        items = [(rng.choice([10.0, 100.0, rng.uniform(1, 500)]), rng.choice([0.0, 0.01, 0.3]))
                 for _ in range(rng.randint(1, 3))]
        groups.append((start, items))
    # the reference ranks equal starts in the groups' order: the link sees them in the order the loop starts them,
    # which for equal start times is the order the processes were spawned (the same)
    expected = reference(groups, 100.0, sharing, p)
    values, fired = through(RankedLink, groups, 100.0, sharing, p)
    assert values == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert through(RankedLink, groups, 100.0, sharing, p, coroutines=True)[0] == pytest.approx(values, rel=1e-12)
    for (start, _), v, f in zip(groups, values, fired):
        assert start - 1e-9 <= f <= v + 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_with_no_preference_it_is_the_processor_sharing_link(seed: int) -> None:
    rng = random.Random(100 + seed)
    sharing = rng.choice([2.0, 1.6])
    groups = [(round(rng.uniform(0, 5), 2), [(rng.uniform(1, 500), rng.choice([0.0, 0.01]))
                                              for _ in range(rng.randint(1, 3))]) for _ in range(25)]
    shared = through(SharedLink, groups, 100.0, sharing)
    values, fired = through(RankedLink, groups, 100.0, sharing, 0.0)
    assert values == pytest.approx(shared[0], rel=1e-9, abs=1e-9)
    assert fired == pytest.approx(shared[1], rel=1e-9, abs=1e-9)


def test_then_and_latest_waiters_as_the_shared_link_delivers_them() -> None:
    # one 100 B transfer with 0.25 s latency: value 1.25; then (floor 2, 0.1, 0.2) wakes at 2.3; a Latest records
    # the value at once and queues nothing
    env = simpy.Environment()
    link = RankedLink(env, 100.0, 2.0, 0.7)
    woken = []

    def proc(me: Coroutine):
        link.transfer_one(100.0, 0.25, (2.0, 0.1, 0.2), me)
        value = yield
        woken.append((env.now, value))

    spawn(env, proc)
    held = Latest()
    env2 = simpy.Environment()
    link2 = RankedLink(env2, 100.0, 2.0, 0.7)
    link2.transfer_one(100.0, 0.25, None, held)
    run(env, link)
    run(env2, link2)
    assert woken == [(pytest.approx(2.3), pytest.approx(1.25))]
    assert held.value == pytest.approx(1.25) and not env2._queue


def test_an_empty_group_or_a_preference_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one transfer"):
        RankedLink(simpy.Environment(), 100.0, 2.0, 0.5).transfers([], 0.0, 0.0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        RankedLink(simpy.Environment(), 100.0, 2.0, 1.5)


# ------------------------------------------------------------------ the platform term, through the simulator

def test_the_platform_term_checks_its_range_and_defaults_to_equal_shares() -> None:
    assert Platform().storage_first_come == 0.0
    for bad in (1.5, -0.1, math.nan):
        with pytest.raises(ConfigError, match="storage_first_come"):
            Platform(storage_first_come=bad)
    env = simpy.Environment()
    assert type(link_for(env, Platform())) is SharedLink                 # the default: bit for bit as before
    assert type(link_for(env, Platform(storage_first_come=0.4))) is RankedLink
    assert link_for(env, Platform(storage_bandwidth_Bps=math.inf, storage_first_come=0.4)) is None
    assert plain_transfers(Platform()) and not plain_transfers(Platform(storage_first_come=0.4))


def staggered_readers(preload: bool = False):
    """``a`` (w0, 0.5 s) stores 20 MB, read by ``b0`` (w1, after its root ``p0``) and ``b1`` (w2, after ``x``).

    Base: ``p0`` takes 0.01 s, so ``b0`` fetches from ``a``'s upload end; ``x`` takes 0.8 s, so ``b1`` fetches from
    0.8.  With pre-load (``preload``): ``p0`` takes 0.8 s and ``x`` 1.5 s, so both readers' input is pre-loaded
    from ``a``'s upload end, beside ``p0`` and ``x``."""
    wf = Workflow("staggered")
    wf.add_task(Task("a", "probe", runtime_s=0.5, output_bytes=20 * MB))
    wf.add_task(Task("p0", "probe", runtime_s=0.8 if preload else 0.01, output_bytes=1))
    wf.add_task(Task("x", "probe", runtime_s=1.5 if preload else 0.8, output_bytes=1))
    for k, before in ((0, "p0"), (1, "x")):
        wf.add_task(Task(f"b{k}", "probe", runtime_s=0.01, output_bytes=1))
        wf.add_edge("a", f"b{k}", 20 * MB)
        wf.add_edge(before, f"b{k}", 1)
    wf.validate()
    worker_of = {"a": "w0", "p0": "w1", "b0": "w1", "x": "w2", "b1": "w2"}
    model = CostModel(latency_s=0.0, bandwidth_Bps=100 * MB, cold_start_s=0.0, warm_start_s=0.0)
    plan = Plan.from_assignment(wf, CATALOG, model.estimate_workflow(wf, CATALOG, "mean"), model, "mean", worker_of,
                                {w: "medium" for w in set(worker_of.values())}, planner="test",
                                sequence={"w0": ["a"], "w1": ["p0", "b0"], "w2": ["x", "b1"]})
    return wf, plan, model


def fetches(p: float, preload: bool = False, **host) -> dict[str, tuple[float, float]]:
    wf, plan, model = staggered_readers(preload)
    platform = Platform(storage_latency_s=0.0, storage_bandwidth_Bps=100 * MB, cold_start_s=0.0, warm_start_s=0.0,
                        invoke_s=0.0, coordination_s=0.0, storage_first_come=p, **host)
    protocol = None
    if preload:
        plan, cls = optimize(plan, wf, model, ("preload",))
        protocol = cls.for_plan(wf, plan)
    t = simulate(wf, plan, model, platform=platform, protocol=protocol).tasks.set_index("task_id")
    return {k: (float(t.loc[k, "download_start_s"]), float(t.loc[k, "download_end_s"])) for k in ("b0", "b1")}


@pytest.mark.parametrize("host", [{}, {"host_cores": 8.0}])
def test_the_earlier_download_gets_more_of_the_link_in_a_run(host) -> None:
    # a's 20 MB upload 0.5 -> 0.7.  b0 from 0.7 alone until b1 starts at 0.8 (10 MB), then: equal shares, both at
    # 50 MB/s, b0 ends at 1.0, b1 got 10 MB and its other 10 alone end at 1.1; p = 0.5, b0 at 75 MB/s ends at
    # 0.8 + 2/15, b1 got 25 * 2/15 = 3.33 MB, 16.67 MB alone: 1.1; first come first served: b0 0.9, b1 1.1
    for p, b0_end in ((0.0, 1.0), (0.5, 0.8 + 2 / 15), (1.0, 0.9)):
        got = fetches(p, **host)
        assert got["b0"] == pytest.approx((0.7, b0_end), abs=1e-6)
        assert got["b1"] == pytest.approx((0.8, 1.1), abs=1e-6)


def test_preloaded_fetches_share_the_link_by_the_same_rule() -> None:
    # the pre-load loop (simulator.overlap_loop): both readers' workers are busy when a's output is stored (p0 until
    # 0.8, x until 1.5), so both pre-load it from 0.7, b0's first (its worker's loop registered first): equal shares
    # both end at 1.1; p = 0.5, b0 at 75 MB/s ends at 0.7 + 20 / 75, b1 got 25 * 20 / 75 = 6.67 MB, the rest alone:
    # 1.1; first come first served, b0 0.9 and b1 1.1
    for p, b0_end in ((0.0, 1.1), (0.5, 0.7 + 20 / 75), (1.0, 0.9)):
        got = fetches(p, preload=True)
        assert got["b0"] == pytest.approx((0.7, b0_end), abs=1e-6)
        assert got["b1"] == pytest.approx((0.7, 1.1), abs=1e-6)


def test_a_run_on_the_default_platform_keeps_the_fast_loop() -> None:
    wf, plan, model = staggered_readers()
    common = dict(storage_latency_s=0.0, storage_bandwidth_Bps=100 * MB)
    from simulator.model import CompiledModel
    compiled = CompiledModel(wf, plan, model)
    assert Run(compiled, Platform(**common)).fast
    assert not Run(compiled, Platform(**common, storage_first_come=0.3)).fast
