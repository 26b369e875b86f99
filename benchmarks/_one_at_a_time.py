"""The one-trial-at-a-time searches ``critical-path`` and ``cost-deadline`` used before the batched search.

Kept for ``bench_planning.py`` only: the reference its plans (cost, makespan) and
speed are compared with.  Each trial moves one worker and re-times the schedule
exactly (:class:`~planning.schedule.Retimer`); ``critical-path`` re-takes the
critical path after every kept move.  O(workers x profiles) re-timings.
"""

from __future__ import annotations

from planning.plan import Plan
from planning.planners.critical_path import critical_indices
from planning.planners.uniform import locality_layout
from planning.schedule import Retimer, ScheduleEvaluator


def _start(workflow, catalog, cost_model, sla):
    estimates = cost_model.estimate_workflow(workflow, catalog, sla)
    worker_of, workers, need = locality_layout(workflow)
    evaluator = ScheduleEvaluator.for_cost_model(workflow, catalog, cost_model, sla)
    layout = evaluator.layout(worker_of)
    profile = {w: catalog.fastest().name for w in workers}
    return estimates, worker_of, workers, need, evaluator, layout, profile


def _plan(workflow, catalog, estimates, cost_model, sla, worker_of, profile, evaluator, name) -> Plan:
    return Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, worker_of, profile,
                                planner=name, params={}, evaluator=evaluator)


def critical_path(workflow, catalog, cost_model, sla, tolerance: float = 0.05) -> Plan:
    """One rung down per non-critical worker per pass, one exact re-timing per trial."""
    estimates, worker_of, workers, need, evaluator, layout, profile = _start(workflow, catalog, cost_model, sla)
    ladder = sorted(catalog, key=lambda p: (-p.cpus, -p.memory_mb, p.price_per_s))
    rung_of = {p.name: k for k, p in enumerate(ladder)}
    ids = evaluator.ids
    timing = Retimer(evaluator, layout, estimates, profile)

    def critical_workers() -> set[str]:
        return {worker_of[ids[i]] for i in critical_indices(timing.done, layout, evaluator)}

    limit = timing.makespan_s * (1.0 + tolerance)
    changed = True
    while changed:
        changed = False
        critical = critical_workers()
        for w in workers:
            if w in critical:
                continue
            price = catalog[profile[w]].price_per_s
            cheaper = [p for p in ladder[rung_of[profile[w]] + 1:] if p.price_per_s < price and p.memory_mb >= need[w]]
            if not cheaper:
                continue
            if timing.change({w: cheaper[0].name}) <= limit:
                timing.commit()
                profile[w], changed = cheaper[0].name, True
                critical = critical_workers()
            else:
                timing.rollback()
    return _plan(workflow, catalog, estimates, cost_model, sla, worker_of, profile, evaluator, "critical-path")


def cost_deadline(workflow, catalog, cost_model, sla, deadline: float) -> Plan:
    """Least busy worker first, each to its cheapest profile that lowers the cost within the deadline."""
    estimates, worker_of, workers, need, evaluator, layout, profile = _start(workflow, catalog, cost_model, sla)
    timing = Retimer(evaluator, layout, estimates, profile)
    if timing.makespan_s > deadline:
        return _plan(workflow, catalog, estimates, cost_model, sla, worker_of, profile, evaluator, "cost-deadline")
    cost = timing.cost(catalog)
    changed = True
    while changed:
        changed = False
        busy = dict(zip(layout.workers, timing.busy_s))
        for w in sorted(workers, key=lambda w: (busy[w], int(w[1:]))):
            price = catalog[profile[w]].price_per_s
            for candidate in catalog.by_price():
                if candidate.price_per_s >= price or candidate.memory_mb < need[w]:
                    continue
                makespan = timing.change({w: candidate.name})
                trial_cost = timing.cost(catalog)
                if makespan <= deadline and trial_cost < cost:
                    timing.commit()
                    profile[w], cost, changed = candidate.name, trial_cost, True
                    break
                timing.rollback()
    return _plan(workflow, catalog, estimates, cost_model, sla, worker_of, profile, evaluator, "cost-deadline")
