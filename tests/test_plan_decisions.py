"""A Plan says what it decided: its assignment and estimates are stored, and engines read them instead of re-deriving."""

from __future__ import annotations

import dataclasses

from planning.costs.cost_model import CostModel
from planning.sources.generators import generate
from planning.plan import Plan
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.sla import SLA
from planning.sources.synthetic import synthetic_history
from simulator.simulate import compile_plan

CATALOG = load_catalog("local")


def test_the_plan_keeps_the_assignment_it_was_given(tmp_path) -> None:
    workflow = generate("random_layered", tasks=30, seed=5)
    plan = get_planner("heft").plan(workflow, CATALOG, CostModel(), "p95")
    a = plan.assignment
    assert plan.worker_of == dict(a.worker_of) and plan.sequence() == {w: list(ts) for w, ts in a.sequence.items()}
    assert sorted(t for ts in a.sequence.values() for t in ts) == sorted(workflow.task_ids)
    plan.to_json(tmp_path / "plan.json")
    back = Plan.from_json(tmp_path / "plan.json")
    assert back.assignment.sequence == a.sequence and back.assignment.worker_of == a.worker_of


def test_a_plan_file_without_its_assignment_gets_it_from_the_planned_times(tmp_path) -> None:
    workflow = generate("fork_join", width=3, depth=2)
    plan = get_planner("heft").plan(workflow, CATALOG, CostModel(), "p95")
    data = plan.to_dict()
    del data["sequence"]        # a file written before plans stored their assignment
    old = Plan.from_dict(data)
    assert old.sequence() == plan.sequence() and old.worker_profile == plan.worker_profile


def test_the_simulator_reuses_the_plans_estimates_only_when_they_are_the_same() -> None:
    workflow = generate("random_layered", tasks=40, seed=1)
    model = CostModel()
    plan = get_planner("heft").plan(workflow, CATALOG, model, "p95")
    assert compile_plan(workflow, plan, model).estimates is plan.estimates
    assert compile_plan(workflow, plan, CostModel()).estimates is not plan.estimates        # another cost model
    at_mean = dataclasses.replace(plan, sla=SLA.parse("mean"))
    assert compile_plan(workflow, at_mean, model).estimates is not plan.estimates          # another SLA
    model.fit(synthetic_history(seed=0)[0])
    refitted = compile_plan(workflow, plan, model).estimates
    assert refitted is not plan.estimates                                                   # fitted since
