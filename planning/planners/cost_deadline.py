"""``cost-deadline``: minimise cost subject to the planned makespan meeting a deadline.

Right-sizing in the spirit of Orion: workers are placed for locality (as in
``uniform``) and start on the fastest profile.  If even that misses the deadline
the plan is returned marked infeasible with the best achievable makespan.
Otherwise the planner greedily moves one worker at a time one rung down the
price ladder, each step taking the move that saves the most dollars per second of
makespan added, while the makespan (at the SLA statistic) stays within the
deadline.  Deterministic: ties go to the lower worker id.  Cost: O(W^2 * P)
schedule evaluations of O(n + e) each in the worst case, for W workers.
"""

from __future__ import annotations

from planning.errors import PlanError
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.planners.uniform import locality_workers


@register_planner("cost-deadline")
class CostUnderDeadline(Planner):
    """See the module docstring; ``deadline`` is in seconds."""

    def __init__(self, *, deadline: float | None = None) -> None:
        self.deadline = deadline

    def plan(self, workflow, catalog, cost_model, sla) -> Plan:
        if self.deadline is None or self.deadline <= 0:
            raise PlanError("planner 'cost-deadline' needs a positive deadline",
                            "pass --deadline SECONDS (or deadline = SECONDS in the config)")
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        worker_of = locality_workers(workflow)
        workers = sorted(set(worker_of.values()), key=lambda w: int(w[1:]))
        need = {w: 0.0 for w in workers}
        for t in workflow.tasks:
            need[worker_of[t.id]] = max(need[worker_of[t.id]], t.memory_mb or 0.0)
        by_price = catalog.by_price()

        def make(assignment: dict[str, str]) -> Plan:
            return Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, worker_of, assignment,
                                        planner=self.name, params=self.params)

        fastest = catalog.fastest().name
        profile = {w: fastest for w in workers}
        plan = make(profile)
        if plan.makespan_s > self.deadline:
            plan.feasible = False
            plan.notes.append(f"infeasible: deadline {self.deadline:g} s, best achievable makespan "
                              f"{plan.makespan_s:.6g} s (all workers on {fastest})")
            return plan
        while True:
            best: tuple[float, str, Plan] | None = None
            for w in workers:
                price = catalog[profile[w]].price_per_s
                cheaper = [p for p in by_price if p.price_per_s < price and p.memory_mb >= need[w]]
                if not cheaper:
                    continue
                trial = make({**profile, w: cheaper[-1].name})   # one rung down
                if trial.makespan_s > self.deadline or trial.cost >= plan.cost:
                    continue
                score = (plan.cost - trial.cost) / max(trial.makespan_s - plan.makespan_s, 1e-12)
                if best is None or score > best[0]:
                    best = (score, w, trial)
            if best is None:
                break
            _, w, plan = best
            profile[w] = plan.worker_profile[w]
        plan.notes.append(f"deadline {self.deadline:g} s met with makespan {plan.makespan_s:.6g} s")
        return plan
