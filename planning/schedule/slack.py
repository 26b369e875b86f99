"""Slack of a timed layout: how late each task may finish, and whether moving one worker fits in that.

Searches that try one profile change per worker (``critical-path``,
``cost-deadline``) need not re-time the workflow to reject or propose a change.
:func:`latest_done` runs the schedule's recurrence backwards once (O(n + e)):
``latest[i]`` is the latest time task ``i`` may be done with every other task's
durations unchanged and the makespan still within ``limit``.  :func:`move_fits`
then checks one worker's move in O(its tasks): re-timing only its own tasks, with
every later task of the worker allowed to start as late as the worst delay so
far (a delay passes through other workers' tasks at most undiminished), it keeps
each within its latest time.

Exact for the planners' schedule (zero invocation latency: the recurrence is a
max-plus one, monotone and non-expansive): a move that fits keeps the makespan
within ``limit`` when made alone.  With an invocation latency the backward pass
charges it on every remote edge (the forward rule charges only the last parent's),
a heuristic there.  Either way the searches confirm a batch of moves with an exact
:class:`~planning.schedule.retimer.Retimer` re-timing; this module only proposes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from planning.schedule.retimer import Retimer

#: Relative margin before a task past its latest time proves a limit broken (the backward pass rounds); the
#: re-timer's too.
ROUNDING = 1e-9


def worker_chains(timing: Retimer) -> list[list[int]]:
    """Each worker's tasks (by number) in its execution order."""
    layout = timing.layout
    nxt = [-1] * len(layout.prev)
    for i, before in enumerate(layout.prev):
        if before >= 0:
            nxt[before] = i
    chains: list[list[int]] = [[] for _ in layout.workers]
    for i, before in enumerate(layout.prev):
        if before < 0:
            chain = chains[layout.worker[i]]
            while i >= 0:
                chain.append(i)
                i = nxt[i]
    return chains


def latest_done(timing: Retimer, limit: float) -> list[float]:
    """Per task: the latest it may be done for the makespan to stay within ``limit`` (the rest unchanged)."""
    ev, lay = timing.evaluator, timing.layout
    n = len(ev.ids)
    inf = float("inf")
    latest = [inf] * n
    for k, s in enumerate(ev.sinks):
        latest[s] = limit - ev.fetch_s[k]
    done, begin, startup = timing.done, timing.begin, timing.startup
    worker, prev, children = lay.worker, lay.prev, ev.children
    coord, invoke = ev.coordination_s, ev.invoke_s
    # latest begin of each task, less its start-up: when its inputs (or its worker) must be there
    arrive_by = [inf] * n
    for i in reversed(lay.order):
        li = latest[i]
        w = worker[i]
        for c in children[i]:
            v = arrive_by[c] - coord - (invoke if worker[c] != w else 0.0)
            if v < li:
                li = v
        latest[i] = li
        start_by = li - (done[i] - begin[i])
        before = prev[i]
        if before >= 0:
            if start_by < latest[before]:
                latest[before] = start_by
            arrive_by[i] = start_by
        else:
            arrive_by[i] = start_by - startup[i]
    return latest


def move_fits(timing: Retimer, chain: Sequence[int], exec_column: int, startup_s: float,
              latest: Sequence[float]) -> tuple[bool, float]:
    """Whether moving the worker of ``chain`` to another profile keeps every task within ``latest``.

    ``exec_column`` is the profile's column in the estimates, ``startup_s`` its
    start-up.  Returns (fits, an upper bound of the worker's new last done).
    """
    done, begin, startup, exec_s, table = timing.done, timing.begin, timing.startup, timing.exec_s, timing.exec_table
    delay = 0.0
    new_done = 0.0
    for k, i in enumerate(chain):
        start = begin[i] - startup[i] + (startup_s if k == 0 else 0.0) + delay
        new_done = start + (done[i] - begin[i]) - exec_s[i] + table[i][exec_column]
        if new_done > latest[i]:
            return False, new_done
        if new_done - done[i] > delay:
            delay = new_done - done[i]
    return True, new_done


def moved_alone(timing: Retimer, chain: Sequence[int], exec_column: int, startup_s: float,
                latest: Sequence[float] | None) -> tuple[bool, float]:
    """Moving the worker of ``chain`` to another profile with the rest of the plan as it is: (whether it surely
    breaks the limit ``latest`` was taken at, the worker's new last done then).

    The counterpart of :func:`move_fits`, also in O(its tasks) and without a
    re-timing: the worker's own tasks re-timed with every other task done as now.
    For a move that only slows (:meth:`~planning.schedule.Retimer.only_slows`) that
    is a lower bound (it delays nothing else earlier), so a task of the chain done
    past its latest time proves the makespan past the limit, and the last done
    bounds the worker's new stop from below.  ``latest``: of a state no slower
    anywhere (None: no limit checked).  Needs a schedule with no invocation
    latency and no pre-warming, where both bounds are exact: ``(False, -inf)``
    otherwise (proves nothing).
    """
    ev, lay = timing.evaluator, timing.layout
    if ev.invoke_s != 0.0 or lay.warm is not None or not chain:
        return False, float("-inf")
    done, begin, exec_s, table = timing.done, timing.begin, timing.exec_s, timing.exec_table
    parents, worker, coord = ev.parents, lay.worker, ev.coordination_s
    w = worker[chain[0]]
    new_done: dict[int, float] = {}
    previous = 0.0
    for k, i in enumerate(chain):
        arrival = 0.0
        for p in parents[i]:
            d = new_done[p] if worker[p] == w else done[p]
            if d + coord > arrival:
                arrival = d + coord
        start = arrival + startup_s if k == 0 else max(arrival, previous)
        previous = new_done[i] = start + (done[i] - begin[i]) - exec_s[i] + table[i][exec_column]
        if latest is not None and previous > latest[i] + ROUNDING * (abs(previous) + 1.0):
            return True, previous
    return False, previous
