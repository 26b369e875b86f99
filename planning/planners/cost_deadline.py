"""``cost-deadline``: minimise cost subject to the planned makespan meeting a deadline.

Right-sizing in the spirit of Orion: workers are placed for locality (as in
``uniform``).  If even the all-fastest plan misses the deadline it is returned
marked infeasible with the best achievable makespan.  Otherwise the plan is built
(:mod:`planning.planners.deadline_levels`), every candidate timed as the process
pool runs it (a worker starts warm on a process an earlier worker of its profile
freed) and kept only if that timing meets the deadline and costs less:

1. the level: the cheapest profile whose uniform plan meets the deadline
   (:func:`~planning.planners.deadline_levels.cheapest_level`; none: all fastest);
2. up to :data:`~planning.planners.deadline_levels.FREE_ROUNDS` rounds of moves that
   delay no other worker's task (:func:`~planning.planners.deadline_levels.free_moves`),
   each worker to the profile that lowers its own cost most; a round is kept whole
   or, if the pool undoes it (a moved worker's process no longer warms a later one),
   not at all and the rounds stop;
3. the exact pass (:func:`~planning.planners.cost_moves.improve`): workers one at a
   time to a cheaper profile, each move re-timed, up to a fixed work bound
   (:data:`~planning.planners.cost_moves.WORK`).  It finishes on small workflows
   (WfFormat files: the plans the search alone found there, or cheaper) and is
   not run where the bound cannot cover a round (beyond ~6.7k tasks).

Why not the search alone from the all-fastest plan (what ``cost-deadline`` was):
with 0.25 s cold starts, millisecond tasks and billed idle waits (Lambda profiles,
the cost model's priors) each moved worker paid a cold start the pool no longer
saved it, and moves that made others wait cost more than they saved, so on random
layered DAGs of 10k tasks (deadline 1.5x the fastest makespan, seeds 0-4) it took
37-53 s for plans costing 0.30-0.82 of the all-fastest one; this costs a few pooled
timings, O((n + e) log n) each, for 0.05-0.12 there.  What it
gives up: left unbounded the exact pass goes on lowering the cost on some DAGs
(2k tasks, seed 1: 0.049 to 0.028 of the all-fastest cost, for ~10x the time).
Deterministic.  Greedy, not optimal: an exact minimum is a knapsack-like search.

``max_evaluations`` bounds the construction's pooled timings and the exact pass's
trials (deterministically), ``time_budget`` their seconds; either cut is recorded
in the plan's notes.  Only the final plan builds DataFrames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from planning.errors import PlanError
from planning.gcpause import paused_gc
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.planners.cost_moves import WORK, improve
from planning.planners.deadline_levels import construct
from planning.planners.move_search import MoveSearch, checked_budgets
from planning.planners.uniform import locality_layout
from planning.profiles import Catalog
from planning.schedule import ScheduleEvaluator
from planning.sla import SLA
from planning.workflow import Workflow

if TYPE_CHECKING:
    from planning.costs.cost_model import CostModel


@register_planner("cost-deadline")
class CostUnderDeadline(Planner):
    """See the module docstring; ``deadline`` is in seconds."""

    def __init__(self, *, deadline: float | None = None, max_evaluations: int | None = None,
                 time_budget: float | None = None) -> None:
        self.time_budget = checked_budgets("cost-deadline", max_evaluations, time_budget)
        self.deadline = deadline
        self.max_evaluations = max_evaluations

    # a construction allocates many short-lived lists and no cycles: the collector's walks of the heap are waste
    @paused_gc()
    def plan(self, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA) -> Plan:
        if self.deadline is None or self.deadline <= 0:
            raise PlanError("planner 'cost-deadline' needs a positive deadline",
                            "pass --deadline SECONDS (or deadline = SECONDS in the config)")
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        worker_of, workers, need = locality_layout(workflow)
        evaluator = ScheduleEvaluator.for_cost_model(workflow, catalog, cost_model, sla)
        layout = evaluator.layout(worker_of)

        def make(assignment: dict[str, str], times) -> Plan:
            """The plan of ``assignment``, whose pooled timing (``times``) the construction already made."""
            return Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, worker_of, assignment,
                                        planner=self.name, params=self.params, evaluator=evaluator,
                                        pooled_times=times)

        fastest = catalog.fastest().name
        all_fastest = {w: fastest for w in workers}
        fastest_times = evaluator.run_estimates(layout, all_fastest, estimates, pooled=True)
        if fastest_times.makespan_s > self.deadline:
            plan = make(all_fastest, fastest_times)
            plan.feasible = False
            plan.notes.append(f"infeasible: deadline {self.deadline:g} s, best achievable makespan "
                              f"{plan.makespan_s:.6g} s (all workers on {fastest})")
            return plan
        search = MoveSearch(None, max_evaluations=self.max_evaluations, time_budget=self.time_budget)
        profile, final, how = construct(evaluator, layout, estimates, catalog, need, self.deadline, fastest_times,
                                        search)
        search.max_work = WORK      # the exact pass's, from here
        profile, final, more = improve(evaluator, layout, estimates, catalog, need, profile, final, self.deadline,
                                       search)
        plan = make(profile, final)
        plan.notes.append(f"deadline {self.deadline:g} s met with makespan {plan.makespan_s:.6g} s "
                          f"({search.evaluations} schedule evaluations, {search.passes_text}, {search.retimings} "
                          f"exact re-timings): {how}")
        plan.notes.extend(more)
        plan.notes.extend(search.notes("cheaper plans may exist"))
        return plan
