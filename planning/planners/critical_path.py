"""``critical-path``: start every worker on the best profile, downgrade those off the critical path.

Workers are placed for locality as in ``uniform``.  Every worker starts on the
fastest profile; then, in a deterministic order (worker id), each worker that has
no task on the current critical path is moved to the next cheaper profile if the
planned makespan stays within ``(1 + tolerance)`` of the all-fastest makespan.
The critical path is recomputed after every accepted change, and passes repeat
until nothing changes.  Cost: O(W * P) schedule evaluations of O(n + e) each, for
W workers and P profiles.
"""

from __future__ import annotations

from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.planners.uniform import locality_layout


def critical_tasks(plan: Plan, workflow) -> set[str]:
    """Tasks on the plan's critical path: back from the last sink through whatever delayed each start.

    A task waited either for its last parent (data) or for the previous task on
    its worker (the worker was busy); the path follows the later of the two.
    """
    tasks = plan.tasks
    prev = {b: a for seq in plan.sequence().values() for a, b in zip(seq, seq[1:])}
    sinks = workflow.sinks()
    current = max(sinks, key=lambda s: (tasks.at[s, "done_s"], s))
    path = set()
    while current is not None:
        path.add(current)
        parents = workflow.parents(current)
        data = max(parents, key=lambda p: (tasks.at[p, "done_s"], p)) if parents else None
        before = prev.get(current)
        data_time = tasks.at[data, "done_s"] if data is not None else -1.0
        worker_time = tasks.at[before, "done_s"] if before is not None else -1.0
        current = data if data_time >= worker_time and data is not None else before
    return path


@register_planner("critical-path")
class CriticalPathDowngrade(Planner):
    """See the module docstring; ``tolerance`` is the relative makespan growth allowed."""

    def __init__(self, *, tolerance: float = 0.05) -> None:
        self.tolerance = tolerance

    def plan(self, workflow, catalog, cost_model, sla) -> Plan:
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        worker_of, workers, need = locality_layout(workflow)
        ladder = sorted(catalog, key=lambda p: (-p.cpus, -p.memory_mb, p.price_per_s))  # fastest first
        fastest = ladder[0].name
        profile = {w: fastest for w in workers}

        def make(assignment: dict[str, str]) -> Plan:
            return Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, worker_of, assignment,
                                        planner=self.name, params=self.params)

        plan = make(profile)
        limit = plan.makespan_s * (1.0 + self.tolerance)
        changed = True
        while changed:
            changed = False
            critical_workers = {worker_of[t] for t in critical_tasks(plan, workflow)}
            for w in workers:
                if w in critical_workers:
                    continue
                rung = [p.name for p in ladder].index(profile[w])
                cheaper = [p for p in ladder[rung + 1:]
                           if p.price_per_s < catalog[profile[w]].price_per_s and p.memory_mb >= need[w]]
                if not cheaper:
                    continue
                trial = make({**profile, w: cheaper[0].name})
                if trial.makespan_s <= limit:
                    profile[w], plan, changed = cheaper[0].name, trial, True
                    critical_workers = {worker_of[t] for t in critical_tasks(plan, workflow)}
        plan.notes.append(f"downgraded {sum(p != fastest for p in profile.values())} of {len(workers)} workers")
        return plan
