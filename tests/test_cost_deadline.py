"""``cost-deadline``: cheapest plan meeting the deadline; infeasible deadlines report the best makespan."""

from __future__ import annotations

import pytest

from planning import SLA, CostModel, generate, load_catalog
from planning.errors import PlanError
from planning.planners import get_planner

CATALOG = load_catalog("local")
MEAN = SLA.parse("mean")


def plan_with(deadline, wf=None):
    return get_planner("cost-deadline", deadline=deadline).plan(wf or generate("five_branches"), CATALOG, CostModel(), MEAN)


def uniform(profile: str):
    return get_planner("uniform", profile=profile).plan(generate("five_branches"), CATALOG, CostModel(), MEAN)


def test_infeasible_deadline_reports_best_makespan() -> None:
    best = uniform("large").makespan_s
    plan = plan_with(best / 2)
    assert not plan.feasible and plan.makespan_s == pytest.approx(best)
    assert "best achievable makespan" in plan.notes[-1]


@pytest.mark.parametrize("slack", [1.0, 1.2, 1.5, 10.0])
def test_deadline_met_and_never_costlier_than_uniform_fastest(slack: float) -> None:
    deadline = uniform("large").makespan_s * slack
    plan = plan_with(deadline)
    assert plan.feasible and plan.makespan_s <= deadline
    assert plan.cost <= uniform("large").cost


def test_loose_deadline_reaches_the_cheapest_profile() -> None:
    plan = plan_with(1e6)
    assert set(plan.tasks["profile"]) == {"small"}
    assert plan.cost == pytest.approx(uniform("small").cost)


def test_tight_deadline_keeps_the_critical_branch_fast() -> None:
    plan = plan_with(uniform("large").makespan_s)
    assert plan.tasks.at["b0-t0", "profile"] == "large" and plan.tasks.at["b4-t0", "profile"] != "large"


def test_missing_deadline_is_a_clear_error() -> None:
    with pytest.raises(PlanError, match="needs a positive deadline"):
        get_planner("cost-deadline").plan(generate("chain"), CATALOG, CostModel(), MEAN)


def test_evaluation_budget_keeps_the_deadline() -> None:
    deadline = uniform("large").makespan_s * 1.5
    full, bounded = plan_with(deadline), get_planner("cost-deadline", deadline=deadline, max_evaluations=3).plan(
        generate("five_branches"), CATALOG, CostModel(), MEAN)
    assert bounded.feasible and bounded.makespan_s <= deadline
    assert "max_evaluations=3" in bounded.notes[-1]
    assert full.cost <= bounded.cost <= uniform("large").cost


@pytest.mark.parametrize("seed", [1, 2])
def test_with_cold_starts_that_dwarf_the_tasks_the_plan_still_saves_on_the_all_fastest_one(seed: int) -> None:
    # Lambda profiles, the cost model's priors (0.25 s cold, 2 ms warm, millisecond tasks): searching every worker
    # cold, the planner returned the all-fastest plan here (its plan missed the deadline on the pooled timing).
    lam, model, mean = load_catalog("lambda"), CostModel(), SLA.parse("mean")
    wf = generate("random_layered", tasks=1000, seed=seed)
    fastest = get_planner("uniform", profile=lam.fastest().name).plan(wf, lam, model, mean)
    plan = get_planner("cost-deadline", deadline=fastest.makespan_s * 1.5).plan(wf, lam, model, mean)
    assert plan.feasible and plan.makespan_s <= fastest.makespan_s * 1.5
    assert plan.cost < 0.9 * fastest.cost
