"""What ``cost-deadline`` (and ``critical-path``, its promise as the deadline) builds its plan from: a profile level,
then the moves that delay no other worker.

Billing runs from a worker's start to its last task's end, idle waits included, and
on random layered DAGs with the cost model's priors (Lambda catalog, millisecond
tasks, 0.25 s cold and 2 ms warm starts) waits are ~96 % of what the all-fastest
plan bills.  So what a plan costs is mostly its prices times how long the schedule
keeps its workers waiting.  Two consequences, measured there (1k-10k tasks, deadline
1.5x the fastest makespan):

- Every worker on one cheaper profile keeps the schedule's shape and the pool's
  warm starts (the workers of a level free processes of that level for the next):
  the cheapest such level that meets the deadline costs 0.05-0.23 of the
  all-fastest plan, where moving workers one at a time from the all-fastest plan
  (the search before this) stopped at 0.19-0.95 after up to 53 s - each moved
  worker paid a cold start its pool no longer warmed.
- A move that makes other workers wait makes them bill the wait: moving the
  workers with the most slack *to the deadline* to a cheaper profile (half of
  them, a tenth of them) cost more than not moving them.  The moves worth making
  delay nobody else.

:func:`cheapest_level`: the profiles in price order, the first whose uniform plan
(a worker whose memory the profile cannot hold stays on the fastest) meets the
deadline and costs less than the all-fastest plan on its pooled timing.
:func:`free_moves`: from a timed plan, each worker to the profile that lowers its own
cost most among those whose move delays no task of another worker
(:func:`unchanged_by`: each task's latest end before a child elsewhere would begin
later; a sink's, the deadline) - checked with every task of the worker delayed by
the extra seconds of all its tasks so far, an upper bound since nothing else moves.
Each such move leaves every other worker's times as they were, and so do all of them
together (each slows only its own chain, within what its children elsewhere wait for
anyway): a round of them is feasible by construction on the timing they were chosen
on.  What that timing cannot see is the pool (a moved worker's process no longer
warms the worker that took it), so the planner keeps a round only on its own pooled
timing.  Each step is O(n + e) array work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from planning.profiles import Catalog

if TYPE_CHECKING:  # pragma: no cover
    from planning.planners.move_search import SearchBudget
    from planning.schedule import ScheduleEvaluator, ScheduleTimes
    from planning.schedule.timing import Layout

Timed = Callable[[dict], "ScheduleTimes | None"]

#: Rounds of moves that delay no other worker, at most: each round's moves leave the others' times as they were,
#: and the next round sees the slack the last one left (on random layered DAGs, seeds 0-4, a third round still
#: saved at 2k tasks; at 10k it moved 29-40 workers and saved nothing on the pooled timing).
FREE_ROUNDS = 3


def pooled_within(evaluator: ScheduleEvaluator, layout: Layout, estimates, assignment: dict[str, str],
                  deadline: float) -> ScheduleTimes | None:
    """The assignment's pooled timing if it meets ``deadline``, else None (given up part-way once sure to miss)."""
    times = evaluator.run_estimates(layout, assignment, estimates, pooled=True, limit=deadline)
    return times if times is not None and times.makespan_s <= deadline else None


def construct(evaluator: ScheduleEvaluator, layout: Layout, estimates, catalog: Catalog, need: dict[str, float],
              deadline: float, fastest_times: ScheduleTimes, budget: SearchBudget) -> tuple[dict[str, str],
                                                                                           ScheduleTimes, str]:
    """The level, then rounds of moves that delay no other worker (module docstring), from the all-fastest plan
    (``fastest_times``: its pooled timing, within ``deadline``): the assignment, its pooled timing and what was kept,
    for the plan's notes.  Each pooled timing is a trial of ``budget``; once it refuses, the plan so far."""

    def pooled(assignment: dict[str, str]) -> ScheduleTimes | None:
        """The assignment's pooled timing if the budget allows one and it meets the deadline, else None."""
        return pooled_within(evaluator, layout, estimates, assignment, deadline) if budget.trial() else None

    budget.passes += 1
    level = cheapest_level(layout, catalog, need, pooled, deadline, fastest_times)
    if level is None:
        profile, final = dict(zip(layout.workers, fastest_times.profiles)), fastest_times
        how = ["no cheaper level meets it"]
    else:
        profile, final = level
        how = [f"level {min(set(profile.values()), key=lambda name: catalog[name].price_per_s)}"]
    chains = Chains(evaluator, layout)
    for _ in range(FREE_ROUNDS):
        if budget.cut is not None:
            break
        moved = free_moves(evaluator, catalog, need, estimates, profile, final, deadline, chains)
        made = sum(p != profile[w] for w, p in moved.items())
        if not made:
            break
        budget.passes += 1
        timed = pooled(moved)
        if timed is None or timed.cost(catalog) >= final.cost(catalog):
            how.append(f"{made} moves delaying no other worker missed the deadline or saved nothing once timed "
                       f"with the pool: not kept")
            break
        how.append(f"{made} moves delaying no other worker")
        profile, final = moved, timed
    return profile, final, ", then ".join(how)


def cheapest_level(layout: Layout, catalog: Catalog, need: dict[str, float], pooled: Timed, deadline: float,
                   fastest_times: ScheduleTimes) -> tuple[dict[str, str], ScheduleTimes] | None:
    """The first profile in price order whose uniform plan meets ``deadline`` and costs less than the all-fastest
    one (``fastest_times``), with that plan's pooled timing (``pooled``: None for a plan it gives up on); None if no
    cheaper profile does."""
    fastest = catalog.fastest()
    ceiling = fastest_times.cost(catalog)
    for p in catalog.by_price():
        if p.price_per_s >= fastest.price_per_s:
            break
        assignment = {w: p.name if p.memory_mb >= need[w] else fastest.name for w in layout.workers}
        times = pooled(assignment)
        if times is not None and times.makespan_s <= deadline and times.cost(catalog) < ceiling:
            return assignment, times
    return None


class Chains:
    """Each worker's tasks in its order, laid end to end (what :func:`free_moves` sums along), and the pairs of
    tasks on different workers where one reads the other's output."""

    def __init__(self, evaluator: ScheduleEvaluator, layout: Layout) -> None:
        n = len(layout.prev)
        nxt = [-1] * n
        for i, before in enumerate(layout.prev):
            if before >= 0:
                nxt[before] = i
        order: list[int] = []
        starts: list[int] = []
        owners: list[int] = []
        for i, before in enumerate(layout.prev):
            if before < 0:
                starts.append(len(order))
                owners.append(layout.worker[i])
                while i >= 0:
                    order.append(i)
                    i = nxt[i]
        self.order = np.asarray(order, dtype=np.int64)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.ends = np.append(self.starts[1:], n) - 1
        self.owners = np.asarray(owners, dtype=np.int64)       # the worker number of each chain
        self.group = np.repeat(np.arange(len(starts)), np.diff(np.append(self.starts, n)))
        worker = layout.worker
        pairs = [(p, c) for c, ps in enumerate(evaluator.parents) for p in ps if worker[p] != worker[c]]
        edges = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        self.parent, self.child = edges[:, 0], edges[:, 1]

    def summed(self, extra: np.ndarray) -> np.ndarray:
        """Per task (in :attr:`order`) and column, the sum of ``extra`` over its chain's tasks up to it."""
        summed = np.cumsum(extra, axis=0)
        before = np.vstack([np.zeros((1, extra.shape[1])), summed])[self.starts]
        return summed - before[self.group]


def unchanged_by(evaluator: ScheduleEvaluator, times: ScheduleTimes, deadline: float, chains: Chains) -> np.ndarray:
    """Per task, the latest it may be done with no task of another worker beginning later than in ``times`` (and a
    sink's output fetched by ``deadline``).

    A child on another worker begins at its arrival (the last parent's done, a
    coordination round trip and an invocation later) plus its start-up if it is
    its worker's first task, else at the later of that arrival and the end of the
    task before it: a parent done by its begin less those keeps it.  (A pre-warmed
    first task begins at the later of its arrival and its start-up's end.)
    """
    layout = times.layout
    bound = np.full(len(layout.prev), np.inf)
    sinks = np.asarray(evaluator.sinks, dtype=np.int64)
    if len(sinks):
        np.minimum.at(bound, sinks, deadline - np.asarray(evaluator.fetch_s, dtype=float))
    child = chains.child
    if len(child):
        begin = np.asarray(times.begin, dtype=float)[child]
        cold = np.asarray(layout.prev, dtype=np.int64)[child] < 0
        if layout.warm is not None:
            cold &= np.asarray(layout.warm, dtype=float)[np.asarray(layout.worker, dtype=np.int64)[child]] < 0
        need_by = begin - np.where(cold, np.asarray(times.startup, dtype=float)[child], 0.0)
        np.minimum.at(bound, chains.parent, need_by - evaluator.coordination_s - evaluator.invoke_s)
    return bound


def free_moves(evaluator: ScheduleEvaluator, catalog: Catalog, need: dict[str, float], estimates,
               assignment: dict[str, str], times: ScheduleTimes, deadline: float, chains: Chains) -> dict[str, str]:
    """``assignment`` with each worker on the profile that lowers its own cost most among those whose move delays
    no other worker's task (module docstring); a worker no such profile saves on stays."""
    layout = times.layout
    names = list(estimates.profiles)
    ladder = [p for p in catalog.by_price() if p.name in names]
    table = np.asarray(estimates.exec_s, dtype=float)[:, [names.index(p.name) for p in ladder]]
    order, starts = chains.order, chains.starts
    # the extra seconds of each task on each profile, the first task's new cold start included
    extra = np.maximum(table[order] - np.asarray(times.exec_s, dtype=float)[order, None], 0.0)
    cold = np.array([evaluator.startup_of(p.name) for p in ladder])
    extra[starts] += np.maximum(cold[None, :] - np.asarray(times.startup, dtype=float)[order[starts], None], 0.0)
    summed = chains.summed(extra)
    latest = unchanged_by(evaluator, times, deadline, chains)
    over = np.asarray(times.done, dtype=float)[order] - latest[order]      # <= 0: room before it delays another
    fits = np.maximum.reduceat(over[:, None] + summed, starts, axis=0) <= 0.0
    owners = chains.owners
    workers = [layout.workers[k] for k in owners]
    start = np.asarray(times.worker_start_s, dtype=float)[owners]
    stop = np.asarray(times.worker_stop_s, dtype=float)[owners]
    price = np.array([p.price_per_s for p in ladder])
    now = np.array([catalog[assignment[w]].price_per_s for w in workers])
    fits &= price[None, :] < now[:, None]
    fits &= np.array([p.memory_mb for p in ladder])[None, :] >= np.array([need[w] for w in workers])[:, None]
    # its own cost after the move, at most: its stop delayed by all its extra seconds, at the new price
    cost = np.where(fits, (stop[:, None] + summed[chains.ends] - start[:, None]) * price[None, :], np.inf)
    pick = np.argmin(cost, axis=1)
    saves = cost[np.arange(len(workers)), pick] < (stop - start) * now
    moved = dict(assignment)
    for k in np.nonzero(saves)[0]:
        moved[workers[k]] = ladder[pick[k]].name
    return moved
