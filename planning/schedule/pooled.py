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
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Mapping, Sequence

from planning.schedule.startups import pooled_startup
from planning.schedule.overlap import time_overlapped
from planning.schedule.timing import Layout, ScheduleTimes, last_parent, time_task

if TYPE_CHECKING:  # pragma: no cover
    from planning.schedule.evaluator import ScheduleEvaluator

__all__ = ["time_pooled"]


def time_pooled(ev: "ScheduleEvaluator", layout: Layout, profiles: tuple[str, ...], exec_s: Sequence[float],
                warm_pool: Mapping[str, int] | None = None) -> ScheduleTimes:
    """Time ``layout`` (profiles per worker number) with warm starts on freed processes; see the module docstring."""
    if layout.overlapped:
        return time_overlapped(ev, layout, profiles, exec_s, warm_pool)
    n, m = len(ev.ids), len(layout.workers)
    worker, prev, store, remote = layout.worker, layout.prev, layout.store, layout.remote
    parents, children, download_s, upload_s = ev.parents, ev.children, ev.download_s, ev.upload_s
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

    def key(i: int) -> float:
        """When task ``i`` reaches its worker (a pre-warmed first task: when its worker starts)."""
        w = worker[i]
        if prev[i] < 0 and warm[w] >= 0:
            return warm[w]
        ps = parents[i]
        if not ps:
            return invoke
        last = last_parent(ps, done) if len(ps) > 1 else ps[0]
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
        r, ws, b, download, e, d = time_task(parents[i], w, before, s, done, worker, remote[i], download_s[i],
                                             exec_list[i], upload_s[i], store[i], invoke, coord, warm[w])
        startup[i] = s
        ready[i], wstart[i], begin[i], dend[i], xend[i], done[i] = r, ws, b, b + download, e, d
        if last_task[w] == i:
            push(stops, (d, w))
        for c in children[i]:
            waiting[c] -= 1
            if waiting[c] == 0:
                push(heap, (key(c), c))
        c = nxt[i]
        if c >= 0:
            waiting[c] -= 1
            if waiting[c] == 0:
                push(heap, (key(c), c))
    return ev.assemble(layout, profiles, exec_list, startup, ready, wstart, begin, dend, xend, done, tuple(reused))
