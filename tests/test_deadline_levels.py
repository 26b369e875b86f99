"""The construction ``cost-deadline`` starts from: the cheapest level, moves that delay no other worker, the
work-bounded exact pass after them.

Behaviour checked against full timings: a round of moves that delay no other
worker leaves every other worker's tasks where they were and the makespan within
the deadline (feasible by construction, on random DAGs with and without start-ups);
the level is the first profile in price order whose uniform plan meets the
deadline; the exact pass stops at its work bound and says so; and the plans stay
far below the all-fastest plan's cost (the planner once returned it, fast).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planning import SLA, CostModel, generate, load_catalog
from planning.planners import cost_deadline, cost_moves, get_planner
from planning.planners.cost_moves import first_startups
from planning.planners.deadline_levels import Chains, cheapest_level, free_moves
from planning.planners.move_search import MoveSearch
from planning.planners.uniform import locality_layout
from planning.schedule import ScheduleEvaluator

LAMBDA = load_catalog("lambda")
MEAN = SLA.parse("mean")
SMALL = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _setup(tasks: int, seed: int, cold: float, dag: str = "random_layered"):
    wf = generate(dag, tasks=tasks, seed=seed)
    model = CostModel(cold_start_s=cold)
    est = model.estimate_workflow(wf, LAMBDA, MEAN)
    worker_of, workers, need = locality_layout(wf)
    evaluator = ScheduleEvaluator.for_cost_model(wf, LAMBDA, model, MEAN)
    return wf, model, est, workers, need, evaluator, evaluator.layout(worker_of)


@SMALL
@given(tasks=st.integers(8, 120), seed=st.integers(0, 10_000), cold=st.sampled_from([0.0, 0.25, 0.4]),
       factor=st.sampled_from([1.0, 1.1, 1.5, 3.0]), start=st.sampled_from(["lambda-10240", "lambda-1769", "mixed"]))
def test_moves_that_delay_no_other_worker_leave_the_others_as_they_were(tasks, seed, cold, factor, start) -> None:
    _, _, est, workers, need, evaluator, layout = _setup(tasks, seed, cold)
    names = [p.name for p in LAMBDA.by_price()]
    profile = {w: (names[(k * 7) % len(names)] if start == "mixed" else start) for k, w in enumerate(workers)}
    times = evaluator.run_estimates(layout, profile, est, pooled=True)
    deadline = times.makespan_s * factor
    moved = free_moves(evaluator, LAMBDA, need, est, profile, times, deadline, Chains(evaluator, layout))
    changed = {w for w in workers if moved[w] != profile[w]}
    assert all(LAMBDA[moved[w]].price_per_s < LAMBDA[profile[w]].price_per_s for w in changed)
    # the full timing the moves were chosen on: every worker's start-up as in ``times`` until it moves, then cold
    held = first_startups(times)
    startups = [evaluator.startup_of(moved[w]) if w in changed else held[k] for k, w in enumerate(layout.workers)]
    after = evaluator.run_estimates(layout, moved, est, startups=startups)
    assert after.makespan_s <= deadline * (1 + 1e-12)
    tol = 1e-9 * (1.0 + times.makespan_s)
    for i, k in enumerate(layout.worker):
        if layout.workers[k] not in changed:
            assert after.begin[i] <= times.begin[i] + tol and after.done[i] <= times.done[i] + tol
    for k, w in enumerate(layout.workers):     # and each moved worker's own cost fell
        if w in changed:
            before = (times.worker_stop_s[k] - times.worker_start_s[k]) * LAMBDA[profile[w]].price_per_s
            assert (after.worker_stop_s[k] - after.worker_start_s[k]) * LAMBDA[moved[w]].price_per_s < before


def test_a_round_moves_the_idle_workers_of_an_all_fastest_plan() -> None:
    _, _, est, workers, need, evaluator, layout = _setup(300, 1, 0.25)
    fastest = {w: LAMBDA.fastest().name for w in workers}
    times = evaluator.run_estimates(layout, fastest, est, pooled=True)
    moved = free_moves(evaluator, LAMBDA, need, est, fastest, times, times.makespan_s, Chains(evaluator, layout))
    assert sum(moved[w] != fastest[w] for w in workers) >= 5


@pytest.mark.parametrize("factor", [1.05, 1.5, 3.0, 100.0])
def test_the_level_is_the_first_profile_in_price_order_whose_uniform_plan_meets_the_deadline(factor) -> None:
    _, _, est, workers, need, evaluator, layout = _setup(200, 2, 0.25)
    fastest = LAMBDA.fastest()
    ft = evaluator.run_estimates(layout, {w: fastest.name for w in workers}, est, pooled=True)
    deadline = ft.makespan_s * factor
    timings = []

    def pooled(assignment):
        timings.append(assignment)
        return evaluator.run_estimates(layout, assignment, est, pooled=True, limit=deadline)

    level = cheapest_level(layout, LAMBDA, need, pooled, deadline, ft)
    uniform = {p.name: evaluator.run_estimates(layout, {w: p.name for w in workers}, est, pooled=True)
               for p in LAMBDA.by_price()}
    meets = [p for p in LAMBDA.by_price() if p.price_per_s < fastest.price_per_s
             and uniform[p.name].makespan_s <= deadline and uniform[p.name].cost(LAMBDA) < ft.cost(LAMBDA)]
    if not meets:
        assert level is None
        return
    assignment, times = level
    assert set(assignment.values()) == {meets[0].name} and len(timings) == LAMBDA.by_price().index(meets[0]) + 1
    assert times.makespan_s == uniform[meets[0].name].makespan_s <= deadline
    if factor == 100.0:
        assert meets[0] == LAMBDA.cheapest()


def test_the_exact_pass_stops_at_its_work_bound_and_says_so(monkeypatch) -> None:
    wf = generate("random_layered", tasks=300, seed=1)
    model = CostModel()
    fastest = get_planner("uniform", profile=LAMBDA.fastest().name).plan(wf, LAMBDA, model, MEAN)
    deadline = fastest.makespan_s * 1.5
    full = get_planner("cost-deadline", deadline=deadline).plan(wf, LAMBDA, model, MEAN)
    assert not any("work bound" in note for note in full.notes)
    monkeypatch.setattr(cost_deadline, "WORK", 1000)       # a round's 3 x 300 tasks, and little more
    bounded = get_planner("cost-deadline", deadline=deadline).plan(wf, LAMBDA, model, MEAN)
    assert any("stopped at its work bound (1000 tasks timed)" in note for note in bounded.notes)
    assert bounded.feasible and bounded.makespan_s <= deadline
    monkeypatch.setattr(cost_deadline, "WORK", 899)        # not even a round: no pass, and the plan says so
    skipped = get_planner("cost-deadline", deadline=deadline).plan(wf, LAMBDA, model, MEAN)
    assert any(note.startswith("no exact pass: 300 tasks") for note in skipped.notes)
    assert skipped.feasible and skipped.cost < fastest.cost
    # the pass only lowers the construction's cost (a greedy: stopped early it may even end lower than in full)
    assert max(full.cost, bounded.cost) <= skipped.cost


def test_move_search_refuses_trials_out_of_work_without_a_cut() -> None:
    search = MoveSearch(None, max_work=10)
    assert search.trial()
    search.work = 10
    assert search.out_of_work() and not search.trial() and search.cut is None
    assert MoveSearch(None).trial()         # no bound: the critical-path search's


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plans_stay_far_below_the_all_fastest_cost_on_random_layered_dags(seed) -> None:
    # The search before the construction stopped at 0.33-0.82 of the all-fastest cost here (and, before held
    # start-ups, at 1.0: the all-fastest plan itself); the construction's level alone is at most 0.23.
    wf = generate("random_layered", tasks=1000, seed=seed)
    model = CostModel()
    fastest = get_planner("uniform", profile=LAMBDA.fastest().name).plan(wf, LAMBDA, model, MEAN)
    plan = get_planner("cost-deadline", deadline=fastest.makespan_s * 1.5).plan(wf, LAMBDA, model, MEAN)
    assert plan.feasible and plan.makespan_s <= fastest.makespan_s * 1.5
    assert plan.cost < 0.25 * fastest.cost
    assert len(set(plan.worker_profile.values())) >= 2


def test_the_exact_pass_only_lowers_the_constructions_cost(monkeypatch) -> None:
    wf = generate("random_layered", tasks=200, seed=4)
    model = CostModel()
    fastest = get_planner("uniform", profile=LAMBDA.fastest().name).plan(wf, LAMBDA, model, MEAN)
    built = []
    real = cost_moves.improve

    def spy(evaluator, layout, estimates, catalog, need, profile, final, *rest):
        built.append(final.cost(catalog))
        return real(evaluator, layout, estimates, catalog, need, profile, final, *rest)

    monkeypatch.setattr(cost_deadline, "improve", spy)
    plan = get_planner("cost-deadline", deadline=fastest.makespan_s * 1.2).plan(wf, LAMBDA, model, MEAN)
    assert built and plan.cost <= built[0] * (1 + 1e-12)
    assert np.isfinite(plan.cost)
