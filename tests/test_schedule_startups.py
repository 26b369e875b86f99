"""One start-up model: the plan's workers start warm on idle processes by the simulator's own pool rule."""

from __future__ import annotations

import math

import pytest

from planning.costs.cost_model import CostModel
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.schedule import ScheduleEvaluator
from planning.schedule.startups import take_idle
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import Platform, simulate

CATALOG = load_catalog("local")


def test_the_pool_rule_by_hand() -> None:
    stack = [1.0, 2.0]                                                  # stop times, in the order they stopped
    assert take_idle(stack, 2.5, 10.0) is True and stack == [1.0]     # the most recently freed first
    assert take_idle(stack, 0.5, 10.0) is False and stack == [1.0]    # not freed yet at 0.5
    assert take_idle([1.0], 11.0, 10.0) is None                       # cold: the caller drops the older ones too
    assert take_idle([], 1.0, 10.0) is False


def _two_step_chain() -> Workflow:
    return Workflow.from_tasks([Task("a", "k"), Task("b", "k")], {"b": ["a"]})


def test_a_worker_started_after_another_stopped_pays_the_warm_start() -> None:
    workflow = _two_step_chain()
    ev = ScheduleEvaluator(workflow, CATALOG, startup_s=lambda p: 0.25, warm_startup_s=lambda p: 0.01)
    layout = ev.layout({"a": "w0", "b": "w1"})
    cold = ev.run(layout, ["small", "small"], [1.0, 1.0])
    pooled = ev.run_pooled(layout, ["small", "small"], [1.0, 1.0])
    assert cold.makespan_s == pytest.approx(2.5)               # 0.25 + 1 + 0.25 + 1: both cold
    assert pooled.makespan_s == pytest.approx(2.26)            # b's worker takes a's process at 1.25: warm
    assert pooled.reused == (False, True)
    result = ev.result(pooled)
    assert result.tasks["cold_start"].tolist() == [True, False]
    assert result.tasks["startup_s"].tolist() == [0.25, 0.01]
    other = ev.run_pooled(layout, ["small", "large"], [1.0, 1.0])     # no idle process of b's profile
    assert other.makespan_s == pytest.approx(2.5) and other.reused == (False, False)
    assert ev.run_pooled(layout, ["small", "small"], [1.0, 1.0], warm_pool={"small": 1}).makespan_s == \
        pytest.approx(2.02)                                    # a warm too, from the pool the run starts with
    short = ScheduleEvaluator(workflow, CATALOG, startup_s=lambda p: 0.25, warm_startup_s=lambda p: 0.01,
                              keep_alive_s=0.0)
    assert short.run_pooled(short.layout({"a": "w0", "b": "w1"}), ["small", "small"], [1.0, 1.0]).makespan_s == \
        pytest.approx(2.5)


def test_one_freed_process_serves_one_worker_and_the_next_forks() -> None:
    # a on w0; b and c (children of a) on w1 and w2, both arriving when a is done at 1.25: one takes a's process
    workflow = Workflow.from_tasks([Task("a", "k"), Task("b", "k"), Task("c", "k")], {"b": ["a"], "c": ["a"]})
    ev = ScheduleEvaluator(workflow, CATALOG, startup_s=lambda p: 0.25, warm_startup_s=lambda p: 0.01)
    times = ev.run_pooled(ev.layout({"a": "w0", "b": "w1", "c": "w2"}), ["small"] * 3, [1.0, 1.0, 1.0])
    assert sorted(times.reused) == [False, False, True]
    assert times.makespan_s == pytest.approx(1.25 + 0.25 + 1.0)      # the branch that forked ends last


STARTUPS = CostModel(latency_s=0.0, bandwidth_Bps=math.inf, cold_start_s=0.25, warm_start_s=0.01)


@pytest.mark.parametrize("planner,params", [("uniform", {"profile": "large"}), ("heft", {}), ("critical-path", {}),
                                            ("cost-deadline", {"deadline": 1e9})])
@pytest.mark.parametrize("generator,spec", [("fork_join", {"width": 4, "depth": 2}), ("gemm", {"blocks": 2}),
                                            ("random_layered", {"tasks": 40, "seed": 3})])
def test_with_start_ups_the_simulation_is_the_plan(planner: str, params: dict, generator: str, spec: dict) -> None:
    """Same start-ups (cold and warm), same pool rule: plan and simulation agree exactly, warm starts included.

    (A dynamic plan - WUKONG places workers at run time - keeps its predictor's cold starts.)
    """
    from planning.sources.generators import generate

    workflow = generate(generator, **spec)
    plan = get_planner(planner, **params).plan(workflow, CATALOG, STARTUPS, "p95")
    platform = Platform.zero().with_(cold_start_s=STARTUPS.startup_s("large", True, "p95"),   # the plan's, at its SLA
                                     warm_start_s=STARTUPS.startup_s("large", False, "p95"), keep_alive_s=600.0)
    trace = simulate(workflow, plan, STARTUPS, platform=platform)
    planned = plan.tasks.loc[trace.tasks["task_id"]]
    assert trace.makespan_s == plan.makespan_s
    assert trace.tasks["cold_start"].tolist() == planned["cold_start"].astype(bool).tolist()
    for phase in ("ready_s", "worker_start_s", "download_end_s", "done_s"):
        assert trace.tasks[phase].tolist() == planned[phase].astype(float).tolist(), phase
    if planner in ("uniform", "cost-deadline"):   # one worker per chain: later chains start on freed processes
        assert (~planned["cold_start"].astype(bool) & (planned["startup_s"] > 0)).any()
