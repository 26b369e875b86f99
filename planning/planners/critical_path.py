"""``critical-path``: the fastest makespan within a tolerance, then as cheap as possible.

Workers are placed for locality as in ``uniform``.  The promise: the planned
makespan stays within ``(1 + tolerance)`` of the all-fastest plan's, both timed
as the process pool runs them (pooled: a worker starts warm on a process an
earlier worker of its profile freed).  Every candidate plan is checked on that
timing, so the promise holds on every plan returned.

The plan is built in two steps, every candidate kept only if its pooled timing
keeps the promise and costs less:

1. the construction ``cost-deadline`` builds for a deadline
   (:func:`~planning.planners.deadline_levels.construct`), with the promise as the
   deadline: the cheapest uniform profile level that keeps it, then rounds of
   moves that delay no other worker's task;
2. from there, passes of one rung down (the next cheaper profile that holds the
   worker's memory) for every worker with no task on the current critical path,
   while the makespan keeps the promise (:func:`_downgrade`, the search of
   :mod:`planning.planners.move_search`).  Each worker is timed with the start-up
   the constructed plan's pooled timing gives it until it moves (then its new
   profile's cold start); each pass's plan is checked pooled, and at the first
   that misses (a moved worker's process no longer warms a later one) the blocks
   of that pass's moves a few pooled timings confirm are kept
   (:func:`~planning.planners.move_search.kept_blocks`).  The passes are a local
   search, so they run from the all-fastest plan too - as ``critical-path`` searched
   before the construction: every worker timed cold, against the tolerance on the
   cold all-fastest makespan, each pass checked pooled - and the cheaper end is
   kept: the construction's level can be the worse start (WfFormat bacass,
   tolerance 0.05: 0.699 of the all-fastest cost from it, 0.519 from the all-fastest
   plan; random layered 2k seed 0: 0.877 and 0.558).  Each start's passes run only
   where their work bound (:data:`~planning.planners.cost_moves.WORK` tasks timed,
   the bound of ``cost-deadline``'s exact pass) covers a round: ~6.7k tasks.

Why not the passes alone from the all-fastest plan (what ``critical-path`` was):
they timed workers cold and checked each pass pooled; moving a worker whose
process a later worker reused cost that worker its warm start, so the pooled
check failed after one to three passes and on some DAGs nothing was kept (random
layered, 10k tasks seed 0 and 1k seed 1: cost 1.000 of the all-fastest plan;
other seeds 0.14-0.88, 1-5 s at 10k).  Most of what the all-fastest plan bills
is idle waiting and cold starts (Lambda profiles, the cost model's priors), and
a cheaper level for every worker keeps the pool's warm starts: the construction
costs a few pooled timings, O((n + e) log n) each, for 0.05-0.48 there (10k
tasks, seeds 0-4).  The passes save more on some workflows (1k-2k tasks: up to
a tenth of the cost after the construction; WfFormat files: no plan dearer than
the passes alone made, several cheaper) and are where the critical path still
decides who moves.  Where no cheaper level keeps the promise and the pool undoes
every round of moves (2k tasks seeds 3 and 4, 5k seed 4) the plan stays the
all-fastest one, as the passes alone (and ``cost-deadline`` at that deadline) left it.

How it differs from ``cost-deadline``: the limit is relative (the fastest makespan
and a tolerance, not a user's deadline), and what follows the construction moves
only workers off the critical path, one rung at a time, rather than each worker
to its cheapest profile.

The passes' search: each pass takes the critical path once and proposes one rung
down for every worker off it.  It first re-times them all at once
(:meth:`~planning.planners.move_search.MoveSearch.settle_whole`): when together
they keep the limit each alone would too (downgrades only slow), and the pass is
done.  Otherwise the proposals whose move fits the schedule's slack alone
(:func:`~planning.schedule.slack.move_fits`, O(its tasks)) are applied in one
exact incremental re-timing (a batch that breaks the limit gives back, on each
path past it, the moves latest in order until the path fits; they are proposed
again next pass), then the moves the slack check doubted are tried one at a
time, exactly, each re-timing stopping at the first task past its latest time.

Deterministic.  ``max_evaluations`` bounds the construction's pooled timings and
the passes' proposals (deterministically), ``time_budget`` their seconds; either
cut is recorded in the plan's notes.  Only the final plan builds DataFrames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Hashable, Sequence

from planning.errors import PlanError
from planning.gcpause import paused_gc
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.planners.cost_moves import ROUND_WORK, WORK, first_startups
from planning.planners.deadline_levels import construct, pooled_within
from planning.planners.move_search import Move, MoveSearch, checked_budgets, kept_blocks, pool_safe_first
from planning.planners.uniform import locality_layout
from planning.profiles import Catalog
from planning.schedule import Layout, Retimer, ScheduleEvaluator, ScheduleTimes
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
        if not isinstance(tolerance, (int, float)) or not 0 <= tolerance < float("inf"):
            raise PlanError(f"critical-path: tolerance must be a number >= 0, got {tolerance!r}",
                            "give the relative makespan growth allowed, e.g. tolerance = 0.05 (5 %)")
        self.tolerance = float(tolerance)
        self.max_evaluations = max_evaluations

    # a search allocates many short-lived lists and no cycles: the collector's walks of the heap are waste
    @paused_gc()
    def plan(self, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA) -> Plan:
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        worker_of, workers, need = locality_layout(workflow)
        fastest = catalog.fastest().name
        evaluator = ScheduleEvaluator.for_cost_model(workflow, catalog, cost_model, sla)
        layout = evaluator.layout(worker_of)
        all_fastest = {w: fastest for w in workers}
        fastest_times = evaluator.run_estimates(layout, all_fastest, estimates, pooled=True)
        promise = fastest_times.makespan_s * (1 + self.tolerance)
        search = MoveSearch(None, max_evaluations=self.max_evaluations, time_budget=self.time_budget)
        profile, final, how = construct(evaluator, layout, estimates, catalog, need, promise, fastest_times, search)
        ladder = sorted(catalog, key=lambda p: (-p.cpus, -p.memory_mb, p.price_per_s))  # fastest first
        down = _one_rung_down(ladder, catalog, need)
        built = profile
        search.max_work = search.work + WORK        # the passes', from here
        profile, final, more = _passes(search, evaluator, layout, estimates, catalog, workers, down, profile, final,
                                       promise, self.tolerance, held=True)
        if built != all_fastest:
            # the passes are a local search: from the all-fastest plan too, timed cold, with a bound of their own
            search.max_work = search.work + WORK
            other, other_times, notes = _passes(search, evaluator, layout, estimates, catalog, workers, down,
                                                dict(all_fastest), fastest_times, promise, self.tolerance, held=False)
            if other_times.cost(catalog) < final.cost(catalog):
                profile, final, more = other, other_times, notes + [
                    "the passes from the all-fastest plan ended cheaper than from the construction: kept those"]
        plan = Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, worker_of, profile,
                                    planner=self.name, params=self.params, evaluator=evaluator, pooled_times=final)
        kept = sum(p != fastest for p in profile.values())
        plan.notes.append(f"within {self.tolerance:g} of the all-fastest makespan ({fastest_times.makespan_s:.6g} s, "
                          f"pooled) with {plan.makespan_s:.6g} s: {how}")
        plan.notes.extend(more)
        plan.notes.append(f"downgraded {kept} of {len(workers)} workers in {search.evaluations} schedule evaluations "
                          f"({search.passes_text}, {search.retimings} exact re-timings)")
        plan.notes.extend(search.notes("more downgrades may be possible"))
        return plan


def _passes(search: MoveSearch, evaluator: ScheduleEvaluator, layout: Layout, estimates, catalog: Catalog,
            workers: list[str], down: Callable[[str, str], str | None], profile: dict[str, str], final: ScheduleTimes,
            promise: float, tolerance: float, *, held: bool) -> tuple[dict[str, str], ScheduleTimes, list[str]]:
    """Step 2 of the module docstring from ``profile`` (its pooled timing ``final``, within ``promise``): the
    assignment, its pooled timing and notes.  Every whole timing counts as one task's work per task.

    ``held``: each worker is timed with the start-up ``final`` gives it until it moves, against the promise; else
    every worker cold, against ``tolerance`` on that cold timing's makespan (the search ``critical-path`` was
    before the construction: the cold timing makes warm-started workers look later, so it moves others where the
    held timing sees no room).  Either way each pass's plan is checked pooled."""
    n = len(evaluator.ids)
    if search.cut is not None:
        return profile, final, []
    if search.max_work is not None and ROUND_WORK * n > search.max_work - search.work:
        return profile, final, [f"no downgrade passes: {n} tasks, more than their work bound ({search.max_work} "
                                f"tasks timed) covers in a round"]
    best = [final.cost(catalog), final]     # the cheapest kept so far and its pooled timing

    def keeps(assignment: dict[str, str]) -> bool:
        """Within the promise and cheaper than the cheapest kept so far, on the pooled timing."""
        search.work += n
        times = pooled_within(evaluator, layout, estimates, assignment, promise)
        if times is not None and times.cost(catalog) < best[0]:
            best[:] = [times.cost(catalog), times]
            return True
        return False

    search.work += n
    search.timing = Retimer(evaluator, layout, estimates, profile,
                            kept_startups=first_startups(final) if held else None)
    limit = promise if held else search.timing.makespan_s * (1 + tolerance)
    missed: list[Move] = []
    reached = _downgrade(search, workers, down, dict(profile), limit, keeps, missed)
    notes: list[str] = []
    if missed:
        before = reached
        reached = kept_blocks(reached, pool_safe_first(missed, best[1]), keeps, whole_missed=True)
        notes.append(f"pass {search.passes}'s plan ({len(missed)} more downgrades) missed the promise or saved "
                     f"nothing on the pooled timing: kept {sum(reached[w] != before[w] for w in reached)} of them")
    if search.out_of_work():
        notes.append(f"the downgrade passes stopped at their work bound ({search.max_work} tasks timed)")
    return reached, best[1], notes


def _downgrade(search: MoveSearch, workers: list[str], down: Callable[[str, str], str | None],
               profile: dict[str, str], limit: float, keeps: Callable[[dict[str, str]], bool],
               missed: list[Move]) -> dict[str, str]:
    """Passes of one-rung-down moves for the workers off the critical path while the makespan stays within
    ``limit`` (timed by ``search.timing``) and each pass's plan ``keeps`` the promise; returns the profiles
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
