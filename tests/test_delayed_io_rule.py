"""Which outputs delayed I/O uploads lazily: only those whose upload holds its worker on the plan's critical path
(:func:`planning.protocol.optimizations.delayed_io.lazy_outputs`) - in the plan, the simulation and the real run.

Workflows (5 MB outputs, the default cost model: each transfer ~25 ms):

* ``FAN``: ``long`` (w1, 2 s) and the gather ``g`` (w1) after it; ``s0 -> s1`` (w2, 0.3 s each) feed ``g`` too:
  w2's uploads have ~1.3 s of room, so moving on earlier buys nothing (fan-large's small branches);
* ``TWO``: ``a1 -> b1`` (w1) and ``a2 -> b2`` (w2), ``a1`` and ``a2`` read by ``x`` (w3): both branches end
  within a transfer of each other, so once ``a1`` is lazy the path moves to w2 and ``a2`` is lazy too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from planning.costs.cost_model import CostModel
from planning.planners import get_planner
from planning.protocol import WorkerProtocol
from planning.protocol.optimizations import DelayedIO, delayed_io_protocol, optimize
from planning.protocol.optimizations.delayed_io import lazy_outputs, path_outputs
from simulator import simulate
from simulator.platform import Platform
from tests.test_optimizations_io import CATALOG, MODEL, assigned, workflow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_optimizations as bench  # noqa: E402

FAN = workflow("fan", {"long": 2.0, "s0": 0.3, "s1": 0.3, "g": 0.1},
               [("s0", "s1"), ("s0", "g"), ("s1", "g"), ("long", "g")])
FAN_PLACES, FAN_SEQ = {"long": "w1", "g": "w1", "s0": "w2", "s1": "w2"}, {"w1": ["long", "g"], "w2": ["s0", "s1"]}
TWO = workflow("two", {"a1": 1.0, "b1": 1.0, "a2": 1.0, "b2": 0.99, "x": 0.1},
               [("a1", "b1"), ("a2", "b2"), ("a1", "x"), ("a2", "x")])
TWO_PLACES = {"a1": "w1", "b1": "w1", "a2": "w2", "b2": "w2", "x": "w3"}
TWO_SEQ = {"w1": ["a1", "b1"], "w2": ["a2", "b2"], "w3": ["x"]}


def lazy_of(cls: type[WorkerProtocol], wf, plan) -> set[str]:
    protocol = cls.for_plan(wf, plan)
    return {t for t in wf.task_ids if protocol.lazy_upload(t, protocol.worker_of[t])}


def test_an_upload_with_room_before_its_consumer_stays_eager_and_nothing_changes() -> None:
    base = assigned(FAN, FAN_PLACES, FAN_SEQ)
    t = base.tasks
    # w2's uploads: s1 is stored ~1.3 s before long ends; the path is w1's own (long, then g)
    assert t.loc["s1", "done_s"] < t.loc["long", "exec_end_s"] - 1.0
    assert path_outputs(base, FAN) == (set(), set())
    every = base.retimed(FAN, MODEL, delayed_io_protocol(DelayedIO, ()))
    assert every.makespan_s == base.makespan_s            # all lazy: the plan gains nothing
    opt, cls = optimize(base, FAN, MODEL, ["delayed_io"])
    assert lazy_of(cls, FAN, opt) == set()
    assert opt.tasks.equals(base.tasks)
    a, b = simulate(FAN, base, MODEL), simulate(FAN, opt, MODEL, protocol=cls.for_plan(FAN, opt))
    assert a.tasks.drop(columns="run_id").equals(b.tasks.drop(columns="run_id"))


def test_the_lazy_uploads_follow_the_critical_path_as_it_moves() -> None:
    plan = assigned(TWO, TWO_PLACES, TWO_SEQ)
    t = plan.tasks
    upload = t.loc["a1", "done_s"] - t.loc["a1", "exec_end_s"]
    assert upload > 0.01                                   # more than b1 - b2: w2 ends last once a1 is lazy
    # eager: b1 ends last, its worker held by a1's upload
    assert path_outputs(plan, TWO) == (set(), {"a1"})
    one_round, _ = lazy_outputs(plan, TWO, MODEL, DelayedIO, rounds=1)
    assert one_round == {"a1"}
    lazy, timed = lazy_outputs(plan, TWO, MODEL, DelayedIO)
    assert lazy == {"a1", "a2"}
    assert path_outputs(timed, TWO)[1] <= lazy             # no eager upload holds a worker on the final path
    tt = timed.tasks
    assert tt.loc["b1", "exec_start_s"] == tt.loc["a1", "exec_end_s"]
    assert tt.loc["b2", "exec_start_s"] == tt.loc["a2", "exec_end_s"]
    assert timed.makespan_s == pytest.approx(plan.makespan_s - upload, abs=1e-9)
    opt, cls = optimize(plan, TWO, MODEL, ["delayed_io"])
    assert lazy_of(cls, TWO, opt) == {"a1", "a2"} and opt.tasks.equals(timed.tasks)


def test_fan_large_with_delayed_io_runs_what_pre_load_alone_runs_in_the_plan_and_the_simulation() -> None:
    # the small branches' uploads have room (their workers moving on would only share the host with the gather's
    # worker's long branch): no output is lazy, the plans and the simulations are pre-load's bit for bit
    wf = bench.fan_large()
    model = CostModel(bandwidth_Bps=800e6)
    platform = Platform.for_local_host().with_(host_cores=2.0)
    for name in bench.PLANNERS:
        base = get_planner(name).plan(wf, CATALOG, model, "mean")
        pre, pre_cls = optimize(base, wf, model, ["preload"])
        both, both_cls = optimize(base, wf, model, ["preload", "delayed_io"])
        assert lazy_of(both_cls, wf, both) == set() and both.tasks.equals(pre.tasks)
        a = simulate(wf, pre, model, protocol=pre_cls.for_plan(wf, pre), platform=platform)
        b = simulate(wf, both, model, protocol=both_cls.for_plan(wf, both), platform=platform)
        assert a.tasks.drop(columns="run_id").equals(b.tasks.drop(columns="run_id"))


def test_the_ladder_uploads_lazily_only_what_holds_its_path() -> None:
    # heft's zig-zag: the spine's uploads for the other worker's side tasks hold the path on some steps only
    wf = bench.ladder()
    model = CostModel(bandwidth_Bps=800e6)
    base = get_planner("heft").plan(wf, CATALOG, model, "mean")
    eager = base.retimed(wf, model, delayed_io_protocol(DelayedIO, wf.task_ids))
    every = base.retimed(wf, model, DelayedIO)
    opt, cls = optimize(base, wf, model, ["delayed_io"])
    lazy = lazy_of(cls, wf, opt)
    assert lazy and path_outputs(opt, wf)[1] <= lazy
    assert every.makespan_s <= opt.makespan_s < eager.makespan_s
    assert len(lazy) < len(lazy_of(DelayedIO, wf, every))


# ------------------------------------------------------------------ the real run
@pytest.fixture(scope="module")
def ex():
    from executor import Executor, ExecutorSettings

    with Executor(settings=ExecutorSettings(keep_alive_s=5.0)) as executor:
        yield executor


def test_an_eager_upload_ends_before_its_worker_moves_on_in_the_real_run(ex) -> None:
    # FAN, shorter: w2's uploads have room, so s0's is eager: s1 starts only once s0 is stored; TWO's a1 holds b1
    fan = workflow("fan_real", {"long": 0.6, "s0": 0.05, "s1": 0.05, "g": 0.05},
                   [("s0", "s1"), ("s0", "g"), ("s1", "g"), ("long", "g")])
    opt, cls = optimize(assigned(fan, FAN_PLACES, FAN_SEQ), fan, MODEL, ["delayed_io"])
    assert lazy_of(cls, fan, opt) == set()
    t = ex.run(fan, opt, protocol=cls.for_plan(fan, opt)).trace.tasks.set_index("task_id")
    assert t.loc["s1", "exec_start_s"] >= t.loc["s0", "upload_end_s"] > t.loc["s0", "exec_end_s"]
    two = workflow("two_real", {"a1": 0.05, "b1": 0.3, "a2": 0.05, "b2": 0.05, "x": 0.05},
                   [("a1", "b1"), ("a2", "b2"), ("a1", "x"), ("a2", "x")])
    opt, cls = optimize(assigned(two, TWO_PLACES, TWO_SEQ), two, MODEL, ["delayed_io"])
    assert lazy_of(cls, two, opt) == {"a1"}
    t = ex.run(two, opt, protocol=cls.for_plan(two, opt)).trace.tasks.set_index("task_id")
    assert t.loc["b1", "exec_start_s"] < t.loc["a1", "upload_end_s"]      # w1 moved on while a1 was uploaded
    assert t.loc["b2", "exec_start_s"] >= t.loc["a2", "upload_end_s"]     # w2 (off the path) uploaded first
