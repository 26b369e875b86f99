"""The analytical schedule in start-time order, so each worker's start finds the processes freed before it.

:meth:`planning.schedule.ScheduleEvaluator.run` times tasks in topological order:
enough when every worker's first task pays a cold start.  Whether a worker starts
warm depends on which workers of its profile stopped before it started - a
question about time, not topology.  So :func:`time_pooled` times the same
recurrence (:func:`planning.schedule.timing.time_task`'s, written out) in the order the
simulator meets the events: tasks come off a heap by their arrival at their worker,
and a worker's first task, before it is timed, takes the processes freed by every
worker that stopped by then (:func:`planning.schedule.startups.take_idle`, the
simulator's own rule).  One pass, O((n + e) log n); ties in time are broken by task
index, where the simulator's event order may differ.

A search that keeps a plan only if its makespan is within a limit can stop such a
timing as soon as the limit is sure to be broken: a task done at ``d`` with a chain
of at least ``remaining[i]`` seconds after it (:func:`remaining_s`: executions and
uploads only, each at least the fastest profile's) ends the makespan past
``d + remaining[i]``.  Tasks come in time order, so a plan that misses the limit is
found out part-way (about half the tasks, on 10k-task random layered DAGs) and one
that keeps it costs what it did.  The answer is the same: the search asks whether the
makespan is within the limit, never for a rejected plan's times.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Mapping, Sequence

from planning.schedule.startups import pooled_startup
from planning.schedule.overlap import time_overlapped
from planning.schedule.timing import Layout, ScheduleTimes

if TYPE_CHECKING:  # pragma: no cover
    from planning.schedule.evaluator import ScheduleEvaluator

__all__ = ["remaining_s", "time_pooled"]

#: Relative margin before a task's done plus its remaining seconds proves a limit broken (sums round).
_ROUNDING = 1e-9


def time_pooled(ev: "ScheduleEvaluator", layout: Layout, profiles: tuple[str, ...], exec_s: Sequence[float],
                warm_pool: Mapping[str, int] | None = None, *, limit: float | None = None,
                remaining: Sequence[float] | None = None) -> ScheduleTimes | None:
    """Time ``layout`` (profiles per worker number) with warm starts on freed processes; see the module docstring.

    ``limit`` and ``remaining`` (per task, a lower bound of the seconds from its done to the makespan:
    :func:`remaining_s`): None as soon as the makespan is sure to exceed ``limit``.  An overlapped layout is
    always timed whole.

    The loop is :func:`~planning.schedule.timing.time_task` written out (a search makes about ten of these
    timings of 10k tasks, and the calls were a fifth of each): a task's arrival - its key on the heap - is
    taken once, when it becomes ready, and its times from it when it comes off.  The same operations in the
    same order, so the same values: the tests compare it with the rule applied call by call.
    """
    if layout.overlapped:
        return time_overlapped(ev, layout, profiles, exec_s, warm_pool)
    n, m = len(ev.ids), len(layout.workers)
    worker, prev, store = layout.worker, layout.prev, layout.store
    parents, download_s, upload_s = ev.parents, ev.input_download_s(layout), ev.upload_s
    invoke, coord = ev.invoke_s, ev.coordination_s
    prewarmed = layout.warm is not None
    warm = layout.warm or (-1.0,) * m
    _, last_task, waiting = ev.worker_order(layout)
    successors = ev.successors(layout)
    done = [0.0] * n
    arrival, ready, wstart, begin, dend, xend, startup = ([0.0] * n for _ in range(7))
    exec_list = [float(x) for x in exec_s]
    reused = [False] * m
    idle: dict[str, list[float]] = {p: [0.0] * int(k) for p, k in (warm_pool or {}).items()}
    stops: list[tuple[float, int]] = []          # (stop time, worker) not yet freed into ``idle``
    push, pop = heapq.heappush, heapq.heappop

    # a task done after give_up[i] proves the makespan past the limit (a margin for the sums' rounding)
    give_up = None
    if limit is not None and remaining is not None:
        bound = limit + _ROUNDING * max(1.0, abs(limit))
        give_up = [bound - x for x in remaining]

    # The tasks with no unmet dependency (worker_order's third list counts parents and the task before on the
    # worker) are roots first on their workers: each reaches its worker one invocation after the start (a
    # pre-warmed one when its worker starts).  The loop below makes every other task ready.
    heap: list[tuple[float, int]] = []
    for i in range(n):
        if waiting[i] == 0:
            arrival[i] = invoke
            wi = worker[i]
            push(heap, (warm[wi] if prewarmed and warm[wi] >= 0 else invoke, i))
    while heap:
        t, i = pop(heap)
        w = worker[i]
        before = prev[i]
        a = arrival[i]
        if before < 0:              # the worker's first task: its start-up by the pool rule at t
            s, reused[w] = pooled_startup(ev, idle, stops, profiles, w, t)
            startup[i] = s
            if prewarmed and warm[w] >= 0:      # started ahead at warm[w], ready at warm[w] + s
                ws = warm[w]
                b = max(a, ws + s)
            else:
                ws = a
                b = ws + s
        else:
            ws = done[before]
            b = a if a > ws else ws
        de = b + download_s[i]
        e = de + exec_list[i]
        d = e + upload_s[i] if store[i] else e
        wstart[i] = ws
        begin[i] = b
        dend[i] = de
        xend[i] = e
        done[i] = d
        if give_up is not None and d > give_up[i]:
            return None
        if last_task[w] == i:
            push(stops, (d, w))
        for c in successors[i]:             # the tasks this one made ready: their ready time and arrival
            left = waiting[c] - 1
            waiting[c] = left
            if left == 0:
                ps, wc = parents[c], worker[c]
                if not ps:                  # a root after another task on its worker
                    a = arrival[c] = invoke
                    push(heap, (a, c))
                    continue
                last = ps[0]
                if len(ps) > 1:
                    best = done[last]
                    for p in ps:
                        x = done[p]
                        if x > best or (x == best and p > last):
                            best, last = x, p
                r = ready[c] = done[last] + coord
                a = arrival[c] = r + invoke if worker[last] != wc else r
                push(heap, (warm[wc] if prewarmed and prev[c] < 0 and warm[wc] >= 0 else a, c))
    return ev.assemble(layout, profiles, exec_list, startup, ready, wstart, begin, dend, xend, done, tuple(reused))


def remaining_s(ev: "ScheduleEvaluator", layout: Layout, exec_s: Sequence[float]) -> list[float]:
    """Per task, a lower bound of the seconds from its done to the makespan, given per-task execution seconds
    that bound the real ones from below (e.g. each task's fastest profile's: one list for every plan of a search).

    The longest chain after the task of executions plus uploads (of stored outputs), through its children (each
    at least one coordination round trip after it) and the task after it on its worker, to a sink's final fetch:
    every term of :func:`~planning.schedule.timing.time_task` that can only delay.  One backward pass, O(n + e).
    """
    n = len(exec_s)
    tail = [float("-inf")] * n
    for k, s in enumerate(ev.sinks):
        tail[s] = ev.fetch_s[k]
    children, store, upload_s, coord, prev = ev.children, layout.store, ev.upload_s, ev.coordination_s, layout.prev
    own = [exec_s[i] + (upload_s[i] if store[i] else 0.0) for i in range(n)]
    for i in reversed(layout.order):
        t = tail[i]
        for c in children[i]:
            v = coord + own[c] + tail[c]
            if v > t:
                t = v
        tail[i] = t
        before = prev[i]
        if before >= 0 and own[i] + t > tail[before]:       # the worker's task before waits for this one
            tail[before] = own[i] + t
    return tail
