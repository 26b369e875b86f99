"""The one-trial-at-a-time forms of the ``critical-path`` and ``cost-deadline`` searches, each following its
planner's rules of today: the same construction (:func:`planning.planners.deadline_levels.construct`; for
``critical-path`` with its promise as the deadline), then the planner's pass one move at a time - start-ups held
from the pooled timing; ``critical-path``: one rung down off the critical path, from the constructed plan (start-ups held) and the all-fastest one (cold); ``cost-deadline``: rounds, a move
tried only if it lowers its own worker's cost - with no bound on its work, where the planners' passes stop at
:data:`planning.planners.cost_moves.WORK`).

Kept for ``bench_planning.py`` only: the reference its plans (cost, makespan) and
speed are compared with.  Each trial moves one worker and re-times the schedule
exactly (:class:`~planning.schedule.Retimer`); ``critical-path`` re-takes the
critical path after every kept move.  O(workers x profiles) re-timings.
"""

from __future__ import annotations

from planning.plan import Plan
from planning.planners.critical_path import critical_indices
from planning.planners.uniform import locality_layout
from planning.planners.cost_moves import REPIN_ROUNDS, first_startups, own_move
from planning.planners.deadline_levels import construct
from planning.planners.move_search import SearchBudget
from planning.schedule import Retimer, ScheduleEvaluator
from planning.schedule.slack import worker_chains


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
    """The planner's construction with the promise as deadline, then passes of one rung down per worker off the
    critical path, one exact re-timing per trial (the critical path re-taken after every kept move), from the
    constructed plan and (if it differs) from the all-fastest plan: the cheaper of the two.

    Timed as the planner's passes time (its rules, one move at a time): each worker keeps the start-up the pool gives
    the plan the passes start from until it moves (then its new profile's cold start); the passes' plan is kept if
    its pooled timing keeps the promise and costs less, else the plan they started from.  No bound on the work.
    """
    estimates, worker_of, workers, need, evaluator, layout, profile = _start(workflow, catalog, cost_model, sla)
    all_fastest = dict(profile)
    fastest_times = evaluator.run_estimates(layout, profile, estimates, pooled=True)
    limit = fastest_times.makespan_s * (1.0 + tolerance)
    profile, final, _ = construct(evaluator, layout, estimates, catalog, need, limit, fastest_times, SearchBudget())
    starts = [(profile, final, True)] + ([(all_fastest, fastest_times, False)] if profile != all_fastest else [])
    ends = [_rung_passes(catalog, estimates, workers, need, evaluator, layout, worker_of, dict(start), times, limit,
                         tolerance, held) for start, times, held in starts]
    profile = min(ends, key=lambda end: end[1])[0]          # the first of equal costs: the construction's
    return _plan(workflow, catalog, estimates, cost_model, sla, worker_of, profile, evaluator, "critical-path")


def _rung_passes(catalog, estimates, workers, need, evaluator, layout, worker_of, profile, times, promise, tolerance,
                 held):
    """Passes one move at a time from ``profile`` (its pooled timing ``times``): the profiles kept and their pooled
    cost.  ``held``: start-ups held from ``times``, against the promise; else all cold, against the tolerance on
    the cold makespan (the planner's two starts)."""
    start = dict(profile)
    ladder = sorted(catalog, key=lambda p: (-p.cpus, -p.memory_mb, p.price_per_s))
    rung_of = {p.name: k for k, p in enumerate(ladder)}
    ids = evaluator.ids
    timing = Retimer(evaluator, layout, estimates, profile, kept_startups=first_startups(times) if held else None)
    limit = promise if held else timing.makespan_s * (1.0 + tolerance)

    def critical_workers() -> set[str]:
        return {worker_of[ids[i]] for i in critical_indices(timing.done, layout, evaluator)}

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
    timed = evaluator.run_estimates(layout, profile, estimates, pooled=True)
    if timed.makespan_s > promise or timed.cost(catalog) >= times.cost(catalog):
        return start, times.cost(catalog)
    return profile, timed.cost(catalog)


def cost_deadline(workflow, catalog, cost_model, sla, deadline: float) -> Plan:
    """The planner's construction, then least busy worker first, each to its cheapest profile that lowers the cost
    within the deadline.

    Timed as the planner searches (its rules, one move at a time): each worker keeps the start-up the pool gives
    the plan the search starts from until it moves (then its new profile's cold start), a move is tried only if
    it lowers its own worker's cost with the rest of the plan as it is
    (:func:`planning.planners.cost_moves.own_move`), and searches start again from the start-ups of the plan the
    last one ended with (at most ``REPIN_ROUNDS``), while its pooled timing meets the deadline and saves.
    """
    estimates, worker_of, workers, need, evaluator, layout, profile = _start(workflow, catalog, cost_model, sla)
    final = evaluator.run_estimates(layout, profile, estimates, pooled=True)
    if final.makespan_s > deadline:
        return _plan(workflow, catalog, estimates, cost_model, sla, worker_of, profile, evaluator, "cost-deadline")
    profile, final, _ = construct(evaluator, layout, estimates, catalog, need, deadline, final, SearchBudget())
    for _ in range(REPIN_ROUNDS):
        before = dict(profile)
        _one_search(catalog, estimates, workers, need, evaluator, layout, profile, first_startups(final), deadline)
        if profile == before:
            break
        timed = evaluator.run_estimates(layout, profile, estimates, pooled=True)
        if timed.makespan_s > deadline or timed.cost(catalog) >= final.cost(catalog):
            profile = before
            break
        final = timed
    return _plan(workflow, catalog, estimates, cost_model, sla, worker_of, profile, evaluator, "cost-deadline")


def _one_search(catalog, estimates, workers, need, evaluator, layout, profile, startups, deadline) -> None:
    """Passes of one move at a time from ``profile`` (changed in place), with ``startups`` held until a move."""
    timing = Retimer(evaluator, layout, estimates, profile, kept_startups=startups)
    chains, number = worker_chains(timing), {w: k for k, w in enumerate(layout.workers)}
    cost = timing.cost(catalog)
    changed = True
    while changed:
        changed = False
        busy = dict(zip(layout.workers, timing.busy_s))
        for w in sorted(workers, key=lambda w: (busy[w], int(w[1:]))):
            k, price = number[w], catalog[profile[w]].price_per_s
            for candidate in catalog.by_price():
                if candidate.price_per_s >= price or candidate.memory_mb < need[w]:
                    continue
                if timing.only_slows({w: candidate.name}) and not own_move(
                        timing, chains[k], k, price, candidate.name, candidate.price_per_s, None)[1]:
                    continue
                makespan = timing.change({w: candidate.name})
                trial_cost = timing.cost(catalog)
                if makespan <= deadline and trial_cost < cost:
                    timing.commit()
                    profile[w], cost, changed = candidate.name, trial_cost, True
                    break
                timing.rollback()
