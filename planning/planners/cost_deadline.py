"""``cost-deadline``: minimise cost subject to the planned makespan meeting a deadline.

Right-sizing in the spirit of Orion: workers are placed for locality (as in
``uniform``) and start on the fastest profile.  If even that misses the deadline
the plan is returned marked infeasible with the best achievable makespan.
Otherwise, worker by worker (least busy first, where slack is likeliest), it
moves each to the cheapest profile that keeps the makespan (at the SLA
statistic) within the deadline and lowers the cost, and repeats such passes
until no worker moves.  Deterministic: ties go to the lower worker id.  Cost:
O(W * P) schedule evaluations of O(n + e) each per pass, for W workers and P
profiles; trials re-time only what a change reaches
(:class:`~planning.schedule.Retimer`, exact) and only the final plan builds
DataFrames.  ``max_evaluations`` bounds the trials
(deterministically) for very large workflows.  Greedy, not optimal: an exact
minimum is a knapsack-like search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from planning.errors import PlanError
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.planners.uniform import locality_layout
from planning.profiles import Catalog
from planning.schedule import Retimer, ScheduleEvaluator
from planning.sla import SLA
from planning.workflow import Workflow

if TYPE_CHECKING:
    from planning.costs.cost_model import CostModel


@register_planner("cost-deadline")
class CostUnderDeadline(Planner):
    """See the module docstring; ``deadline`` is in seconds."""

    def __init__(self, *, deadline: float | None = None, max_evaluations: int | None = None) -> None:
        if max_evaluations is not None and max_evaluations < 1:
            raise PlanError(f"cost-deadline: max_evaluations must be >= 1, got {max_evaluations!r}",
                            "give a positive number of schedule evaluations, or none for no limit")
        self.deadline = deadline
        self.max_evaluations = max_evaluations

    def plan(self, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA) -> Plan:
        if self.deadline is None or self.deadline <= 0:
            raise PlanError("planner 'cost-deadline' needs a positive deadline",
                            "pass --deadline SECONDS (or deadline = SECONDS in the config)")
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        worker_of, workers, need = locality_layout(workflow)
        by_price = catalog.by_price()
        evaluator = ScheduleEvaluator.for_cost_model(workflow, catalog, cost_model, sla)
        layout = evaluator.layout(worker_of)

        def make(assignment: dict[str, str]) -> Plan:
            return Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, worker_of, assignment,
                                        planner=self.name, params=self.params, evaluator=evaluator)

        fastest = catalog.fastest().name
        profile = {w: fastest for w in workers}
        timing = Retimer(evaluator, layout, estimates, profile)
        if timing.makespan_s > self.deadline:
            plan = make(profile)
            plan.feasible = False
            plan.notes.append(f"infeasible: deadline {self.deadline:g} s, best achievable makespan "
                              f"{plan.makespan_s:.6g} s (all workers on {fastest})")
            return plan
        cost = timing.cost(catalog)
        evaluations, budget, exhausted = 1, self.max_evaluations, False
        changed = True
        while changed and not exhausted:    # passes until no worker can move (usually one or two)
            changed = False
            busy = dict(zip(layout.workers, timing.busy_s))
            for w in sorted(workers, key=lambda w: (busy[w], int(w[1:]))):    # least busy first
                price = catalog[profile[w]].price_per_s
                for candidate in by_price:                                    # cheapest first
                    if candidate.price_per_s >= price or candidate.memory_mb < need[w]:
                        continue
                    if budget is not None and evaluations >= budget:
                        exhausted = True
                        break
                    evaluations += 1
                    makespan = timing.change({w: candidate.name})
                    trial_cost = timing.cost(catalog)
                    if makespan <= self.deadline and trial_cost < cost:
                        timing.commit()
                        profile[w], cost, changed = candidate.name, trial_cost, True
                        break
                    timing.rollback()
                if exhausted:
                    break
        plan = make(profile)
        plan.notes.append(f"deadline {self.deadline:g} s met with makespan {plan.makespan_s:.6g} s "
                          f"({evaluations} schedule evaluations)")
        if exhausted:
            plan.notes.append(f"stopped at max_evaluations={budget}: cheaper plans may exist")
        return plan
