"""The default platform's fast path (simulator.fast_loop) and the general loop give the same runs, bit for bit.

Both paths run on a set of workflows, planners and platforms the fast path applies
to; every column of both frames and the makespan must be equal (not approximately),
so the fast path cannot drift from the one interpreter of the protocol
(:mod:`simulator.worker_loop`).  The platforms vary every term the fast path reads:
shared bandwidth and its sharing, latencies, task overhead, coordination (zero: the
downloads' wake-up at their end), invocation, level delay, keep-alive, start-ups, a
warm pool and pre-warmed workers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from planning.costs.cost_model import CostModel
from planning.plan import Plan
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.protocol import WorkerProtocol
from planning.protocol.decisions import OutputDecision
from simulator import Platform
from simulator.draws import draw
from simulator import fast_loop
from simulator.engine import Run
from simulator.loop import Coroutine
from simulator.simulate import compile_plan, to_trace
from planning.sources.generators import generate

MODEL = CostModel()
CATALOG = load_catalog("local")
BASE = Platform.from_cost_model(MODEL, "p95")
PLATFORMS = {
    "default": BASE,
    "contention": BASE.with_(storage_bandwidth_Bps=5e6, task_overhead_s=0.001),
    "no_coordination": BASE.with_(coordination_s=0.0, storage_bandwidth_Bps=2e7, invoke_s=0.0),
    "sharing_keepalive": BASE.with_(storage_sharing=1.7, keep_alive_s=0.05, level_delay_s=0.001, invoke_s=0.003),
    "slow_link_latency": BASE.with_(storage_bandwidth_Bps=1e6, storage_latency_s=0.02, cold_start_s=0.3),
}
WORKFLOWS = {
    "random_layered": lambda: generate("random_layered", tasks=300, seed=1),
    "fork_join": lambda: generate("fork_join", width=12, depth=3),
    "gemm": lambda: generate("gemm", blocks=3, seed=1),
    "tree_reduction": lambda: generate("tree_reduction", leaves=32),
    "five_branches": lambda: generate("five_branches", size=50, rounds=10, seed=1),
    "fan_out": lambda: generate("fan_out", width=40),
}
PLANNERS = {"uniform": {"profile": "medium"}, "heft": {}, "critical-path": {}, "cost-deadline": {"deadline": 1e9}}


def both_paths(workflow, plan, platform: Platform, warm_pool=None):
    """The run's trace by the fast path and by the general loop, and whether the fast path was taken.

    The fast path is run by its Python module and, where the install built a current one, by its compiled
    twin (simulator.compiled) too, which must give the Python module's trace bit for bit."""
    traces, taken = [], None
    for fast, compiled_loop in ((True, False), (True, True), (False, False)):
        model = compile_plan(workflow, plan, MODEL)
        run = Run(model, platform, None, warm_pool=dict(warm_pool or {}), fast=fast, compiled_loop=compiled_loop)
        if fast and not compiled_loop:
            taken = run.fast
            assert run.fast_module is (fast_loop if run.fast else None)
        elif fast and run.fast_module in (fast_loop, None):
            continue                       # (no compiled twin here: the Python module is the one fast path)
        traces.append(to_trace(model, run.run(), "r", {}))
    if len(traces) == 3:
        assert_same(traces[1], traces[0])
    return traces[0], traces[-1], taken


def assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a.tasks, b.tasks, check_exact=True)
    pd.testing.assert_frame_equal(a.workers, b.workers, check_exact=True)
    assert a.makespan_s == b.makespan_s


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("planner", sorted(PLANNERS))
@pytest.mark.parametrize("workflow", sorted(WORKFLOWS))
def test_fast_path_equals_the_general_loop(workflow: str, planner: str, platform: str) -> None:
    wf = WORKFLOWS[workflow]()
    plan = get_planner(planner, **PLANNERS[planner]).plan(wf, CATALOG, MODEL, "p95")
    fast, general, taken = both_paths(wf, plan, PLATFORMS[platform])
    assert taken
    assert_same(fast, general)


def test_fast_path_with_a_warm_pool_and_pre_warmed_workers() -> None:
    """Pre-warmed workers (spawned with no task, waiting for their first notification) and a warm pool."""
    wf = generate("random_layered", tasks=120, seed=4)
    plan = get_planner("uniform", profile="medium").plan(wf, CATALOG, MODEL, "p95")
    a = plan.assignment
    later = sorted(w for w, seq in a.sequence.items() if seq and wf.graph.in_degree(seq[0]) > 0)[:5]
    assert later
    warmed = Plan.from_assignment(wf, CATALOG, plan.estimates, MODEL, "p95", a.worker_of, a.worker_profile,
                                  planner="uniform", sequence=a.sequence, warm_starts={w: 0.01 for w in later})
    fast, general, taken = both_paths(wf, warmed, BASE, warm_pool={"medium": 3, "large": 2})
    assert taken
    assert_same(fast, general)


@pytest.mark.parametrize("keep_alive_s", [0.0, 0.02, 1e9])
def test_fast_path_with_an_expiring_warm_pool_and_many_workers(keep_alive_s: float) -> None:
    """The keep-alive rule inlined in the fast path (planning.schedule.startups.take_idle): a warm pool that goes
    cold before (0.02 s: some later workers start warm, others cold) or at once (0: none warm) or never, with a
    worker per task (fan-out: many start messages at one instant, ties in time broken by their order) and zero
    invocation latency (the start messages delivered at once, spawned from inside a worker)."""
    for wf in (generate("fan_out", width=60), generate("random_layered", tasks=200, seed=3)):
        plan = get_planner("uniform", profile="medium").plan(wf, CATALOG, MODEL, "p95")
        for platform in (BASE.with_(keep_alive_s=keep_alive_s),
                         BASE.with_(keep_alive_s=keep_alive_s, invoke_s=0.0, level_delay_s=0.0)):
            fast, general, taken = both_paths(wf, plan, platform, warm_pool={"medium": 4, "small": 2})
            assert taken and len(fast.workers) >= 60
            assert_same(fast, general)


def test_fast_path_applies_only_to_the_case_it_is_written_for() -> None:
    """Free bandwidth (no link), a shared host, the stager, a serial dispatcher, sampled draws and a live
    protocol run the general loop."""
    wf = generate("fork_join", width=4, depth=2)
    plan = get_planner("uniform", profile="medium").plan(wf, CATALOG, MODEL, "p95")
    model = compile_plan(wf, plan, MODEL)
    assert Run(model, BASE).fast
    assert not Run(model, BASE, fast=False).fast
    for changes in ({"storage_bandwidth_Bps": math.inf}, {"host_cores": 2.0}, {"staging_s_per_GB": 5.0},
                    {"dispatch_s": 0.002}):
        assert not Run(model, BASE.with_(**changes)).fast, changes
    assert Run(model, BASE, record=False).fast      # (rows appended, not read)
    draws = draw(model, np.random.default_rng(1), BASE.run_noise, BASE.noise_scale, BASE.run_center)
    assert not Run(model, BASE, draws).fast
    dynamic = get_planner("wukong").plan(wf, CATALOG, MODEL, "p95")
    live = compile_plan(wf, dynamic, MODEL)
    assert live.tables is None and not Run(live, BASE).fast


class StoreEverything(WorkerProtocol):
    """Every output stored, even one only read on its own worker (a hook the tables then ask task by task)."""

    def handle_output(self, task_id: str, worker: str) -> OutputDecision:
        return OutputDecision(True, self.output_bytes(task_id))


@pytest.mark.parametrize("platform", ["default", "no_coordination"])
def test_fast_path_equals_the_general_loop_under_an_overridden_hook(platform: str) -> None:
    wf = WORKFLOWS["random_layered"]()
    plan = get_planner("heft").plan(wf, CATALOG, MODEL, "p95")
    traces = []
    for fast in (True, False):
        model = compile_plan(wf, plan, MODEL, protocol=StoreEverything.for_plan(wf, plan))
        run = Run(model, PLATFORMS[platform], fast=fast)
        assert run.fast == fast
        traces.append(to_trace(model, run.run(), "r", {}))
    assert_same(*traces)


def test_the_calendar_pops_in_simpys_order_with_what_the_general_code_queued() -> None:
    """The fast path's calendar (simulator.fast_loop: times negated and sorted, the next event last) pops
    what SimPy's heap would: by time, ties in the order queued - including entries the general code put in
    SimPy's queue, moved in by ``_drain`` after the calendar's own entries at the same times."""
    import simpy
    from bisect import bisect_left
    from heapq import heappop, heappush

    from simpy.events import NORMAL

    from simulator.fast_loop import _drain

    env = simpy.Environment()
    heap, keys, items = [], [], []
    def queue_both(when, name):       # the calendar's own push, and the same entry in a reference heap
        nt = -when
        k = bisect_left(keys, nt)
        keys.insert(k, nt)
        items.insert(k, name)
        heappush(heap, (when, NORMAL, next(env._eid), name))
    for when, name in ((2.0, "a"), (1.0, "b"), (2.0, "c"), (0.5, "d")):
        queue_both(when, name)
    for when, name in ((2.0, "e"), (1.0, "f"), (2.0, "g"), (3.0, "h")):   # the general code queues in SimPy's queue
        entry = (when, NORMAL, next(env._eid), name)
        heappush(env._queue, entry)
        heappush(heap, entry)
    _drain(env._queue, keys, items)
    queue_both(2.0, "i")
    assert not env._queue
    popped = []
    while keys:
        popped.append((-keys.pop(), items.pop()))
    assert popped == [(e[0], e[3]) for e in (heappop(heap) for _ in range(len(heap)))]
    assert [name for _, name in popped] == ["d", "b", "f", "a", "c", "e", "g", "i", "h"]
    heappush(env._queue, (1.0, NORMAL, next(env._eid), simpy.Event(env)))    # a SimPy event has no place on it
    with pytest.raises(RuntimeError, match="fast path met a SimPy event"):
        _drain(env._queue, keys, items)


@pytest.mark.parametrize("platform", ["default", "sharing_keepalive", "slow_link_latency"])
def test_fast_path_equals_the_general_loop_with_many_inputs_of_unequal_sizes(platform: str) -> None:
    """Tasks with up to six inputs of widely spread sizes: groups of downloads whose transfers end in separate
    wake-ups between other groups' (the fast path takes a group's value at its last transfer only, the general
    wake-up keeps a running maximum) and children counted down by several parents, some invoked at once
    (the fast path counts down and invokes in one pass)."""
    wf = generate("random_layered", tasks=400, seed=5, max_parents=6, output_sigma=2.0)
    plan = get_planner("uniform", profile="medium").plan(wf, CATALOG, MODEL, "p95")
    model = compile_plan(wf, plan, MODEL)
    sizes = [s for s in model.tables.fetch_sized if s and len(s) >= 3]
    assert len(sizes) > 20 and any(len(set(s)) == len(s) for s in sizes)   # (the case: many unequal groups)
    for p in (PLATFORMS[platform], PLATFORMS[platform].with_(invoke_s=0.0, level_delay_s=0.0)):
        fast, general, taken = both_paths(wf, plan, p)
        assert taken
        assert_same(fast, general)


def _link_with(groups, bandwidth: float = 100.0, sharing: float = 2.0):
    """A SharedLink whose groups ``(start, [bytes...])`` were started at their times (nothing woken yet)."""
    import simpy

    from simulator.storage import SharedLink

    env = simpy.Environment()
    link = SharedLink(env, bandwidth, sharing)
    for start, sizes in groups:
        env._now = start
        link.transfers(sizes, 0.0, start, None, Coroutine(env))
    return link


def _state(link) -> tuple:
    return link._served, link._updated, link._head, [a[0] for a in link._active[link._head:]]


def test_complete_by_brings_the_link_to_now_through_transfers_that_end_no_group() -> None:
    """simulator.fast_loop._complete_by, hand-computed on a 100 B/s link (equal shares).

    Two transfers of one group at 0 (100 and 300 bytes: 50 B/s each): the 100-byte one ends at 2 s (not its
    group's last), the 300-byte one would end at 4 s.  At 2.5 s the link has served 100 + 0.5 * 100 = 150
    bytes per transfer, its clock at 2.5, its head past the finished transfer - what SharedLink.wake gives."""
    from simulator.fast_loop import _complete_by

    link, reference = _link_with([(0.0, [100.0, 300.0])]), _link_with([(0.0, [100.0, 300.0])])
    assert _complete_by(link, 2.5)
    reference.wake(2.5)
    assert _state(link) == _state(reference) == (150.0, 2.5, 1, [300.0])


def test_complete_by_leaves_a_group_s_end_to_the_full_wake_up() -> None:
    """At 4 s the 300-byte transfer (its group's last) is due: nothing is changed, False returned."""
    from simulator.fast_loop import _complete_by

    link = _link_with([(0.0, [100.0, 300.0])])
    before = _state(link)
    assert not _complete_by(link, 4.0)
    assert _state(link) == before


def test_complete_by_with_three_staggered_transfers_and_equal_ends() -> None:
    """Three transfers: a group (50, 250) at 0 and (50, 250) at 1 s on a 100 B/s link, sharing 2.

    0-1 s: two in flight, 50 B/s each: the clock serves 50 bytes - the first group's 50-byte transfer ends
    exactly at 1 s, as the second group starts (which completes it; its marks 50 + 50 = 100 and 50 + 250 =
    300).  1 s on: three
    in flight (250, 100, 300 marks), 100/3 B/s each; the 100-mark transfer ends when 50 more bytes are
    served, at 1 + 50 * 3 / 100 = 2.5 s.  At 2.5 s both 50-byte transfers have ended (no group's last):
    served 100, clock 2.5, two transfers left - as SharedLink.wake; and the state equals wake's bit for bit
    at every time in between and on the equal end at 1 s."""
    from simulator.fast_loop import _complete_by

    groups = [(0.0, [50.0, 250.0]), (1.0, [50.0, 250.0])]
    for now in (1.0, 1.7, 2.5, 2.9):
        link, reference = _link_with(groups), _link_with(groups)
        link.env._now = reference.env._now = now
        assert _complete_by(link, now)
        reference.wake(now)
        assert _state(link) == _state(reference)
    link = _link_with(groups)
    assert _complete_by(link, 2.5)
    assert _state(link) == (100.0, 2.5, 2, [250.0, 300.0])
