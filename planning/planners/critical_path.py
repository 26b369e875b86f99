"""``critical-path``: start every worker on the best profile, downgrade those off the critical path.

Workers are placed for locality as in ``uniform``.  Every worker starts on the
fastest profile; then each worker that has no task on the current critical path
is moved to the next cheaper profile (that holds its memory) if the planned
makespan stays within ``(1 + tolerance)`` of the all-fastest makespan, pass
after pass until no worker moves.

The promise holds on the plan returned, timed as the final plan is (pooled:
a worker starts warm on a process an earlier one freed).  The search times
every worker cold (incremental, and a bound of the pooled timing) against the
tolerance on the cold all-fastest makespan, and checks each pass's plan with
one pooled timing; at the first pass whose plan misses the promise it stops and
keeps the blocks of that pass's moves that a few pooled timings confirm
(:func:`~planning.planners.move_search.kept_blocks`); a pooled timing of a plan
that misses gives up part-way, once a task's done proves the miss
(:mod:`planning.schedule.pooled`).  The cold timing is a poor
guide here - moving a worker whose process a later worker reuses costs that
worker its warm start - so on large workflows the search often stops after one
to three passes.

The search (:mod:`planning.planners.move_search`): each pass takes the critical
path once and proposes one rung down for every worker off it.  It first re-times
them all at once (:meth:`~planning.planners.move_search.MoveSearch.settle_whole`):
when together they keep the limit - most passes, where the cold timing has room -
each alone would too (downgrades only slow), and the pass is done.  Otherwise the
proposals whose move fits the schedule's slack alone
(:func:`~planning.schedule.slack.move_fits`, O(its tasks)) are applied in one
exact incremental re-timing (a batch that breaks the limit gives back, on each
path past it, the moves latest in order until the path fits; they are proposed
again next pass), then the moves the slack check doubted are tried one at a
time, exactly, in worker order, each re-timing stopping at the first task past
its latest time.  A pass costs O(n + e)
plus the re-timings; the number of passes is about the number of profiles.
The one-trial-at-a-time search it replaces re-timed after every trial (and
re-took the critical path after every kept move): O(W * P) re-timings for W
workers and P profiles.  The plans are mostly the same; where they differ a
worker that became critical during a pass was still moved one rung - cheaper,
and within the same limit (benchmarks/results/planning.json compares them).

Deterministic.  ``max_evaluations`` bounds the proposals (deterministically: the
plan is the one reached after that many), ``time_budget`` the search's seconds;
either cut is recorded in the plan's notes.  Only the final plan builds
DataFrames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Hashable, Sequence

from planning.gcpause import paused_gc
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.planners.move_search import Move, MoveSearch, checked_budgets, kept_blocks, pool_safe_first
from planning.planners.uniform import locality_layout
from planning.profiles import Catalog
from planning.schedule import Layout, Retimer, ScheduleEvaluator
from planning.schedule.slack import latest_done, move_fits, worker_chains
from planning.sla import SLA
from planning.workflow import Workflow

if TYPE_CHECKING:
    from planning.costs.cost_model import CostModel


def _walk_back(sinks: Sequence[Hashable], parents: Callable[[Hashable], Sequence[Hashable]],
               before: Callable[[Hashable], Hashable | None], done: Callable[[Hashable], float],
               name: Callable[[Hashable], str], start: Hashable | None = None) -> set:
    """Back from the last sink (``start`` if known) through whatever delayed each start.

    At each task the path follows the later of its last parent and its predecessor on the worker.
    """
    current = start if start is not None else max(sinks, key=lambda s: (done(s), name(s)))
    path = set()
    while current is not None:
        path.add(current)
        ps = parents(current)
        data = max(ps, key=lambda p: (done(p), name(p))) if ps else None
        prev = before(current)
        data_time = done(data) if data is not None else -1.0
        worker_time = done(prev) if prev is not None else -1.0
        current = data if data_time >= worker_time and data is not None else prev
    return path


def critical_tasks(plan: Plan, workflow) -> set[str]:
    """Tasks on the plan's critical path: back from the last sink through whatever delayed each start.

    A task waited either for its last parent (data) or for the previous task on
    its worker (the worker was busy); the path follows the later of the two.
    """
    done = plan.tasks["done_s"].to_dict()
    prev = {b: a for seq in plan.sequence().values() for a, b in zip(seq, seq[1:])}
    return _walk_back(workflow.sinks(), workflow.parents, prev.get, done.__getitem__, str)


def critical_indices(done: Sequence[float], layout: Layout, evaluator: ScheduleEvaluator) -> set[int]:
    """:func:`critical_tasks` of a fast run (its per-task finish times), as task indices (topological order)."""
    ids, prev = evaluator.ids, layout.prev
    last = -1
    for s in evaluator.sinks:           # max by (done, task id), without a key function per sink
        if last < 0 or done[s] > done[last] or (done[s] == done[last] and ids[s] > ids[last]):
            last = s
    return _walk_back(evaluator.sinks, evaluator.parents.__getitem__, lambda i: prev[i] if prev[i] >= 0 else None,
                      done.__getitem__, ids.__getitem__, start=last)




@register_planner("critical-path")
class CriticalPathDowngrade(Planner):
    """See the module docstring; ``tolerance`` is the relative makespan growth allowed."""

    def __init__(self, *, tolerance: float = 0.05, max_evaluations: int | None = None,
                 time_budget: float | None = None) -> None:
        self.time_budget = checked_budgets("critical-path", max_evaluations, time_budget)
        self.tolerance = tolerance
        self.max_evaluations = max_evaluations

    # a search allocates many short-lived lists and no cycles: the collector's walks of the heap are waste
    @paused_gc()
    def plan(self, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA) -> Plan:
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        worker_of, workers, need = locality_layout(workflow)
        ladder = sorted(catalog, key=lambda p: (-p.cpus, -p.memory_mb, p.price_per_s))  # fastest first
        fastest = ladder[0].name
        all_fastest = {w: fastest for w in workers}
        evaluator = ScheduleEvaluator.for_cost_model(workflow, catalog, cost_model, sla)
        layout = evaluator.layout(worker_of)
        down = _one_rung_down(ladder, catalog, need)
        # The promise is on the final plan's timing, with warm starts on the processes earlier workers freed
        # (pooled).  The search times every worker cold (incremental; a bound the pooled timing stays under)
        # against the tolerance on the cold all-fastest makespan, and checks each pass's plan on the pooled
        # timing: at the first that misses the promise it stops, keeping the blocks of that pass's moves that
        # a few pooled timings confirm (:func:`~planning.planners.move_search.kept_blocks`).
        def keeps(assignment: dict[str, str]) -> bool:
            """Within the promise and cheaper than the cheapest kept so far, on the pooled timing (which gives up,
            returning None, once its makespan is sure to miss the promise)."""
            times = evaluator.run_estimates(layout, assignment, estimates, pooled=True, limit=promise)
            if times is not None and times.makespan_s <= promise and times.cost(catalog) < best[0]:
                best[:] = [times.cost(catalog), times]
                return True
            return False

        fastest_times = evaluator.run_estimates(layout, all_fastest, estimates, pooled=True)
        # the cheapest kept so far and its pooled timing: the plan returned is the last kept, timed once
        promise, best = fastest_times.makespan_s * (1 + self.tolerance), [fastest_times.cost(catalog), fastest_times]
        timing = Retimer(evaluator, layout, estimates, all_fastest)
        search = MoveSearch(timing, max_evaluations=self.max_evaluations, time_budget=self.time_budget)
        missed: list[Move] = []
        profile = _downgrade(search, workers, down, dict(all_fastest), timing.makespan_s * (1.0 + self.tolerance),
                             keeps, missed)
        before = profile
        if missed:
            profile = kept_blocks(profile, pool_safe_first(missed, fastest_times), keeps, whole_missed=True)
        plan = Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, worker_of, profile,
                                    planner=self.name, params=self.params, evaluator=evaluator, pooled_times=best[1])
        kept = sum(p != fastest for p in profile.values())
        plan.notes.append(f"downgraded {kept} of {len(workers)} workers in {search.evaluations} schedule evaluations "
                          f"({search.passes_text}, {search.retimings} exact re-timings)")
        if missed:
            plan.notes.append(f"pass {search.passes}'s plan ({len(missed)} more downgrades, timed cold) missed the "
                              f"promise on the pooled timing: kept {sum(profile[w] != before[w] for w in workers)} of "
                              f"them (tolerance {self.tolerance:g} on the pooled all-fastest makespan)")
        plan.notes.extend(search.notes("more downgrades may be possible"))
        return plan


def _downgrade(search: MoveSearch, workers: list[str], down: Callable[[str, str], str | None],
               profile: dict[str, str], limit: float, keeps: Callable[[dict[str, str]], bool],
               missed: list[Move]) -> dict[str, str]:
    """Passes of one-rung-down moves for the workers off the critical path while the makespan stays within
    ``limit`` (timed by ``search.timing``, cold) and each pass's plan ``keeps`` the promise; returns the profiles
    reached.  The first pass whose plan does not is undone, and ``missed`` gets its moves."""
    timing = search.timing
    layout, evaluator = timing.layout, timing.evaluator
    chains, number = worker_chains(timing), {w: k for k, w in enumerate(layout.workers)}
    within = lambda makespan, _: makespan <= limit  # noqa: E731
    while search.cut is None:
        search.passes += 1
        critical = {layout.worker[i] for i in critical_indices(timing.done, layout, evaluator)}
        proposed: list[Move] = []
        for w in workers:
            cheaper = down(w, profile[w])
            if number[w] in critical or cheaper is None:
                continue
            if not search.trial():
                break
            proposed.append((w, cheaper))
        deferred: list[Move] = []
        kept = search.settle_whole(proposed, within)
        if kept is None:                # together they break the limit: split them by the slack
            kept = _settle_by_slack(search, proposed, chains, number, limit, within, deferred)
        if kept and not keeps({**profile, **dict(kept)}):
            missed.extend(kept)
            break
        profile.update(kept)
        if not kept and not deferred:
            break
    return profile


def _settle_by_slack(search: MoveSearch, proposed: list[Move], chains: list[list[int]], number: dict[str, int],
                     limit: float, within: Callable[[float, list[Move]], bool], deferred: list[Move]) -> list[Move]:
    """The moves of ``proposed`` kept when all of them at once break ``limit``: those whose move fits the slack
    (:func:`~planning.schedule.slack.move_fits`) as batches (:meth:`MoveSearch.settle`; ``deferred`` gets the ones
    blamed), then the others one at a time."""
    timing = search.timing
    latest = latest_done(timing, limit)
    moves, doubtful = [], []
    for w, cheaper in proposed:
        fits = move_fits(timing, chains[number[w]], timing.column[cheaper],
                         timing.startup_for(number[w], cheaper), latest)[0]
        (moves if fits else doubtful).append((w, cheaper))
    kept = search.settle(moves, within, limit=limit, latest=latest, deferred=deferred)
    if deferred and not kept:       # nothing moved: the next pass would propose the same, try them now
        kept = search.settle(deferred, within, limit=limit, latest=latest)
        deferred.clear()
    return kept + search.settle_each(doubtful, within, latest=latest)


def _one_rung_down(ladder: list, catalog: Catalog, need: dict[str, float]) -> Callable[[str, str], str | None]:
    """``down(worker, profile)``: the next rung below ``profile`` that is cheaper and holds the worker's memory."""
    rung_of = {p.name: k for k, p in enumerate(ladder)}
    known: dict[tuple[str, float], str | None] = {}       # (profile, memory need): a search asks for each worker

    def down(worker: str, profile: str) -> str | None:
        key = (profile, need[worker])
        if key not in known:
            price = catalog[profile].price_per_s
            known[key] = next((p.name for p in ladder[rung_of[profile] + 1:]
                               if p.price_per_s < price and p.memory_mb >= need[worker]), None)
        return known[key]
    return down
