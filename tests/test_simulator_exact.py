"""With no overheads the simulator reproduces every planner's analytical schedule exactly.

The plan's times come from :mod:`planning.schedule`, the simulator's from
interpreting :class:`planning.protocol.WorkerProtocol` in SimPy time; equality
(not approximate) on every generator and every registered planner shows the two
follow one protocol.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from planning.costs.cost_model import CostModel
from planning.errors import PlanError
from planning.planners import PLANNERS, get_planner
from planning.profiles import load_catalog
from planning.sources.generators import generate
from planning.sources.wfformat import read_wfformat
from simulator import Platform, simulate

FREE = CostModel(latency_s=0.0, bandwidth_Bps=math.inf, cold_start_s=0.0, warm_start_s=0.0)
CATALOG = load_catalog("local")
PARAMS = {"uniform": {"profile": "large"}, "wukong": {"profile": "large"}, "cost-deadline": {"deadline": 1e9}}
GENERATORS = {
    "chain": {"length": 5}, "fork_join": {"width": 4, "depth": 2}, "tree_reduction": {"leaves": 8},
    "gemm": {"blocks": 2}, "random_layered": {"tasks": 40, "seed": 3}, "fan_out": {"width": 6},
    "deep_chain": {"length": 8}, "five_branches": {},
}
PHASES = ["ready_s", "worker_start_s", "download_start_s", "download_end_s", "exec_start_s", "exec_end_s",
          "upload_start_s", "upload_end_s", "done_s"]
DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"


def make_plan(planner: str, workflow, sla: str = "p95"):
    try:
        return get_planner(planner, **PARAMS.get(planner, {})).plan(workflow, CATALOG, FREE, sla)
    except PlanError as exc:  # a planner that needs something this workflow lacks
        pytest.skip(f"{planner}: {exc}")


def assert_exact(workflow, plan) -> None:
    trace = simulate(workflow, plan, FREE, platform=Platform.zero())
    planned = plan.tasks.loc[trace.tasks["task_id"]]
    for phase in PHASES:
        assert np.array_equal(trace.tasks[phase].to_numpy(), planned[phase].to_numpy(float)), phase
    assert trace.makespan_s == plan.makespan_s
    if not plan.dynamic:
        assert trace.tasks["worker"].tolist() == planned["worker"].tolist()
    assert trace.cost == pytest.approx(plan.cost, rel=1e-12, abs=1e-18)
    trace.validate()


@pytest.mark.parametrize("generator", sorted(GENERATORS))
@pytest.mark.parametrize("planner", sorted(PLANNERS))
def test_simulation_equals_the_analytical_schedule(planner: str, generator: str) -> None:
    workflow = generate(generator, **GENERATORS[generator])
    assert_exact(workflow, make_plan(planner, workflow))


@pytest.mark.parametrize("planner", sorted(PLANNERS))
def test_every_planner_simulates_the_shipped_executions(planner: str) -> None:
    for path in sorted(DATA.glob("*.json")):
        workflow = read_wfformat(path)
        assert_exact(workflow, make_plan(planner, workflow, sla="mean"))


def test_default_platform_agrees_with_the_plan_without_contention() -> None:
    # a chain never has two transfers at once: only invocation and coordination latencies differ,
    # and with those set to zero the simulation is the plan (up to float rounding of latency + bytes)
    model = CostModel()
    workflow = generate("chain", length=6)
    plan = get_planner("heft").plan(workflow, CATALOG, model, "p95")
    platform = Platform.from_cost_model(model, "p95", invoke_s=0.0, coordination_s=0.0)
    trace = simulate(workflow, plan, model, platform=platform)
    assert trace.makespan_s == pytest.approx(plan.makespan_s, rel=1e-9)
    default = simulate(workflow, plan, model)
    assert default.makespan_s > trace.makespan_s       # the latencies the plan does not model
