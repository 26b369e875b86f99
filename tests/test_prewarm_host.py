"""Pre-warm on a shared host: a worker is warmed only where its start-up runs on cores the plan leaves idle."""

from __future__ import annotations

import math

import pytest

from planning.costs.cost_model import CostModel
from planning.plan import Plan
from planning.profiles import load_catalog
from planning.protocol.optimizations import optimize
from planning.protocol.optimizations.prewarm_host import CpuLoad
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import simulate
from simulator.platform import Platform

MODEL = CostModel()
CATALOG = load_catalog("local")


def warmable() -> tuple[Workflow, Plan]:
    """a (1 s) on w0 makes b and c ready for the new workers w1 and w2 (w0 goes on with d); 1-CPU workers."""
    wf = Workflow("warmable")
    for t in "abcd":
        wf.add_task(Task(t, "step", runtime_s=1.0, output_bytes=1000))
    for child in "bcd":
        wf.add_edge("a", child, 1000)
    wf.validate()
    places = {"a": "w0", "d": "w0", "b": "w1", "c": "w2"}
    plan = Plan.from_assignment(wf, CATALOG, MODEL.estimate_workflow(wf, CATALOG, "mean"), MODEL, "mean", places,
                                {w: "medium" for w in places.values()}, planner="assigned")
    return wf, plan


def test_cpu_load_places_work_as_late_as_it_fits_in_the_spare_cores() -> None:
    load = CpuLoad(2.0)
    load.add(0.0, 1.0, 2.0)                       # both cores busy until 1, then idle
    assert load.spare(2.0) == [(0.0, 1.0, 0.0), (1.0, 2.0, 2.0)]
    assert load.place_late(0.5, 1.0, 2.0) == pytest.approx(1.5)    # one core, just before 2
    assert load.place_late(0.5, 1.0, 2.0) == pytest.approx(1.5)    # the other core
    assert load.place_late(0.25, 1.0, 2.0) == pytest.approx(1.25)  # both cores hold [1.5, 2): one takes [1.25, 1.5)
    # 0.5 core-s more: the idle core of [1.25, 1.5) then one of [1, 1.25), from 1
    assert load.place_late(0.5, 1.0, 2.0) == pytest.approx(1.0)
    assert load.place_late(0.5, 1.0, 2.0) is None                  # only 0.25 core-s left after 1
    # a half core at a time (a 0.5-CPU quota) takes twice as long: 0.25 core-s in the last 0.5 s of one idle core
    half = CpuLoad(1.0)
    assert half.place_late(0.25, 0.5, 3.0) == pytest.approx(2.5)


def test_on_two_cores_each_warm_up_takes_the_core_a_leaves_idle_one_after_the_other() -> None:
    wf, plan = warmable()
    warm, _ = optimize(plan, wf, MODEL, ["prewarm"], host_cores=2.0)
    lead = MODEL.startup_s(CATALOG["medium"], True, "p95")
    ready = float(plan.tasks.loc["b", "ready_s"])
    # hand-computed: while a runs (one core), one core is idle; w1's start-up (lead core-seconds) takes it just
    # before b is ready, w2's (c is ready at the same time, w2 sorts second) the lead before that - less the gap
    # between a's end and b's readiness (a's commit: no CPU in the plan), when both cores are idle for both
    gap = ready - float(plan.tasks.loc["a", "exec_end_s"])
    assert 0 < gap < lead
    assert warm.assignment.warm_starts == pytest.approx({"w1": ready - lead, "w2": ready - 2 * lead + gap})
    assert warm.annotations["prewarm"]["held_back"] == [] and warm.annotations["prewarm"]["host_cores"] == 2.0
    # no cold start left before b or c: each begins when it is ready
    for t in "bc":
        assert warm.tasks.loc[t, "download_start_s"] == pytest.approx(warm.tasks.loc[t, "ready_s"])
    # three cores: both idle cores are free for both at once, so both are warmed just in time
    three, _ = optimize(plan, wf, MODEL, ["prewarm"], host_cores=3.0)
    assert three.assignment.warm_starts == pytest.approx({"w1": ready - lead, "w2": ready - lead})


def test_on_one_core_no_worker_is_warmed_and_the_plan_is_the_base_plan() -> None:
    wf, plan = warmable()
    # one core: w0's start-up, then a, hold it all the time before b and c are ready - a warm-up there
    # takes from a what it saves, so both workers start cold as planned
    warm, _ = optimize(plan, wf, MODEL, ["prewarm"], host_cores=1.0)
    assert warm.assignment.warm_starts == {}
    assert warm.annotations["prewarm"]["held_back"] == ["w1", "w2"]
    assert warm.makespan_s == plan.makespan_s
    assert "prewarm" not in plan.annotations          # the caller's plan keeps its own annotations
    platform = Platform.for_local_host(host_cores=1.0, keep_alive_s=0.0)
    assert simulate(wf, warm, MODEL, platform=platform).makespan_s == simulate(wf, plan, MODEL,
                                                                                  platform=platform).makespan_s


def test_without_a_host_every_worker_is_warmed_its_lead_before_its_task() -> None:
    wf, plan = warmable()
    warm, _ = optimize(plan, wf, MODEL, ["prewarm"])           # host_cores infinite: a machine per worker
    lead = MODEL.startup_s(CATALOG["medium"], True, "p95")
    ready = float(plan.tasks.loc["b", "ready_s"])
    assert warm.assignment.warm_starts == pytest.approx({"w1": ready - lead, "w2": ready - lead})
    assert warm.annotations["prewarm"]["host_cores"] is None
    assert optimize(plan, wf, MODEL, ["prewarm"], host_cores=math.inf)[0].assignment.warm_starts == \
        warm.assignment.warm_starts


def test_an_experiment_cell_plans_pre_warm_for_its_host() -> None:
    from experiments.pipeline import plan_cell

    wf, plan = warmable()

    class Assigned:            # a planner that returns the assigned plan (plan_cell plans, then optimizes)
        def plan(self, *args, **kwargs):
            return plan

    one = plan_cell(Assigned(), wf, CATALOG, MODEL, "mean", optimizations=("prewarm",), host_cores=1.0)
    unshared = plan_cell(Assigned(), wf, CATALOG, MODEL, "mean", optimizations=("prewarm",))
    assert one.plan.assignment.warm_starts == {} and one.plan.annotations["prewarm"]["held_back"] == ["w1", "w2"]
    assert set(unshared.plan.assignment.warm_starts) == {"w1", "w2"}


def test_on_a_shared_host_a_warm_up_off_the_critical_path_is_not_made() -> None:
    # a (1 s) then d (1 s) on w0: the critical path; b (0.1 s, a's child) on the new worker w1 ends long before d.
    # On two cores w1's start-up fits beside a, but warming it shortens nothing: it is held back (billed seconds
    # and CPU for nothing); with a machine per worker the plain rule still warms it
    wf = Workflow("off-path")
    for t, seconds in (("a", 1.0), ("b", 0.1), ("d", 1.0)):
        wf.add_task(Task(t, "step", runtime_s=seconds, output_bytes=1000))
    wf.add_edge("a", "b", 1000)
    wf.add_edge("a", "d", 1000)
    wf.validate()
    places = {"a": "w0", "d": "w0", "b": "w1"}
    plan = Plan.from_assignment(wf, CATALOG, MODEL.estimate_workflow(wf, CATALOG, "mean"), MODEL, "mean", places,
                                {w: "medium" for w in places.values()}, planner="assigned")
    shared, _ = optimize(plan, wf, MODEL, ["prewarm"], host_cores=2.0)
    assert shared.assignment.warm_starts == {} and shared.annotations["prewarm"]["held_back"] == ["w1"]
    assert shared.makespan_s == plan.makespan_s
    unshared, _ = optimize(plan, wf, MODEL, ["prewarm"])
    assert set(unshared.assignment.warm_starts) == {"w1"} and unshared.makespan_s == pytest.approx(plan.makespan_s)
