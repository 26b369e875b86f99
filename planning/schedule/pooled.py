"""The analytical schedule in start-time order, so each worker's start finds the processes freed before it.

:meth:`planning.schedule.ScheduleEvaluator.run` times tasks in topological order:
enough when every worker's first task pays a cold start.  Whether a worker starts
warm depends on which workers of its profile stopped before it started - a
question about time, not topology.  So :func:`time_pooled` times the same
recurrence (:func:`planning.schedule.timing.time_task`, unchanged) in the order the
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
from planning.schedule.timing import Layout, ScheduleTimes, last_parent, time_task

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
    """
    if layout.overlapped:
        return time_overlapped(ev, layout, profiles, exec_s, warm_pool)
    n, m = len(ev.ids), len(layout.workers)
    worker, prev, store = layout.worker, layout.prev, layout.store
    parents, children, download_s, upload_s = ev.parents, ev.children, ev.input_download_s(layout), ev.upload_s
    invoke, coord = ev.invoke_s, ev.coordination_s
    warm = layout.warm or (-1.0,) * m
    nxt, last_task, waiting = ev.worker_order(layout)
    done = [0.0] * n
    ready, wstart, begin, dend, xend, startup = ([0.0] * n for _ in range(6))
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
    lastp = [-1] * n            # per task, its last parent: taken once, when the task's arrival is

    def key(i: int) -> float:
        """When task ``i`` reaches its worker (a pre-warmed first task: when its worker starts)."""
        w = worker[i]
        if prev[i] < 0 and warm[w] >= 0:
            return warm[w]
        ps = parents[i]
        if not ps:
            return invoke
        last = lastp[i] = last_parent(ps, done) if len(ps) > 1 else ps[0]
        return done[last] + coord + (invoke if worker[last] != w else 0.0)

    heap = [(key(i), i) for i in range(n) if waiting[i] == 0]
    heapq.heapify(heap)
    while heap:
        t, i = pop(heap)
        w = worker[i]
        before = prev[i]
        s = 0.0
        if before < 0:
            s, reused[w] = pooled_startup(ev, idle, stops, profiles, w, t)
        r, ws, b, download, e, d = time_task(parents[i], w, before, s, done, worker, download_s[i],
                                             exec_list[i], upload_s[i], store[i], invoke, coord, warm[w], lastp[i])
        startup[i] = s
        ready[i], wstart[i], begin[i], dend[i], xend[i], done[i] = r, ws, b, b + download, e, d
        if give_up is not None and d > give_up[i]:
            return None
        if last_task[w] == i:
            push(stops, (d, w))
        c = nxt[i]                          # the tasks this one made ready, at their arrival
        if c >= 0:
            waiting[c] -= 1
            if waiting[c] == 0:
                push(heap, (key(c), c))
        for c in children[i]:
            waiting[c] -= 1
            if waiting[c] == 0:
                push(heap, (key(c), c))
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
