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
