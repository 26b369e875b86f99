"""The analytical schedule when transfers overlap executions: pre-load and delayed I/O.

The base rule (:func:`planning.schedule.timing.time_task`) runs a worker's phases one
after the other: download, execute, upload, then the next task.  Two optimizations
overlap them, and this module is their one timing rule (the planner's schedule; the
simulator's loop follows the same recurrence, :mod:`simulator.overlap_loop`):

* **pre-load** (``Layout.preload[i]``): a task that is not its worker's first fetches
  its inputs in the background while the tasks before it run - each input's download
  starts at ``max(that input stored, the anchor's execution start)``, the anchor being
  the pre-loaded task before it on its worker, else the worker's first task
  (:func:`planning.protocol.preload_order.preload_anchors`: one pre-load at a time; an
  input stored early is fetched then, not when the last one is) - and it executes at
  ``max(downloads done, the task before done, its notification)``;
* **delayed I/O** (``Layout.lazy[i]``): task ``i``'s output is uploaded in the
  background: its worker moves on at the execution's end, and its own later tasks
  read the output from memory then (their counters are updated at once); other
  workers' tasks wait for the upload's end (``done``) as before.

Per task, ``free[i]`` is when its worker may move on (``done`` unless lazy: the
execution's end).  A parent on the task's own worker counts at its ``free``, one on
another at its ``done``; the last of them (ties to the highest index, as everywhere)
makes the task ready.  Timed in start-time order with the processes' pool rule, as
:func:`planning.schedule.pooled.time_pooled` does for the base rule.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Mapping, Sequence

from planning.protocol.preload_order import preload_anchors
from planning.schedule.startups import pooled_startup
from planning.schedule.timing import Layout, ScheduleTimes, worker_order

if TYPE_CHECKING:  # pragma: no cover
    from planning.schedule.evaluator import ScheduleEvaluator

__all__ = ["time_overlapped", "overlapped_task"]


def _arrival(ps: Sequence[int], w: int, worker: Sequence[int], done: Sequence[float], free: Sequence[float],
             invoke: float, coord: float) -> tuple[float, float]:
    """(ready, arrival at worker ``w``) of a task with parents ``ps``: a local parent counts at its ``free``."""
    if not ps:
        return 0.0, invoke
    last, best = -1, float("-inf")
    for p in ps:
        t = free[p] if worker[p] == w else done[p]
        if t > best or (t == best and p > last):
            best, last = t, p
    r = best + coord
    return r, r + (invoke if worker[last] != w else 0.0)


def overlapped_task(i: int, ps: Sequence[int], w: int, before: int, startup: float, lists: tuple,
                    worker: Sequence[int], fetched: Sequence[bool], download_row: Sequence[float], exec_s: float,
                    upload_s: float, store: bool, lazy: bool, preload: bool, invoke: float, coord: float,
                    warm: float = -1.0, anchor: int = -1) -> None:
    """Time task ``i`` into ``lists`` = (ready, worker start, download start, download end, execution start,
    execution end, done, free): see the module docstring.  ``anchor``: the task whose execution start begins
    ``i``'s pre-load (-1: the task before)."""
    ready, wstart, begin, dend, xstart, xend, done, free = lists
    r, arrival = _arrival(ps, w, worker, done, free, invoke, coord)
    download = 0.0
    for k in range(len(ps)):
        if fetched[k] and download_row[k] > download:
            download = download_row[k]
    if before < 0:
        if warm >= 0:
            ws, b = warm, max(arrival, warm + startup)
        else:
            ws = arrival
            b = ws + startup
        d0, d1, xs = b, b + download, b + download
    else:
        ws = free[before]
        b = arrival if arrival > ws else ws
        if preload and download > 0:     # each input from when it is stored (or the anchor started)
            d0, d1, x0 = float("inf"), 0.0, xstart[anchor if anchor >= 0 else before]
            for k, p in enumerate(ps):
                if fetched[k]:
                    s0 = done[p] if done[p] > x0 else x0
                    if s0 < d0:
                        d0 = s0
                    if s0 + download_row[k] > d1:
                        d1 = s0 + download_row[k]
            xs = d1 if d1 > b else b
        else:
            d0, d1, xs = b, b + download, b + download
    e = xs + exec_s
    d = e + upload_s if store else e
    ready[i], wstart[i], begin[i], dend[i], xstart[i], xend[i], done[i] = r, ws, d0, d1, xs, e, d
    free[i] = e if lazy else d


def _anchors(layout: Layout, preload: Sequence[bool], download_s: Sequence[Sequence[float]],
             nxt: Sequence[int]) -> list[int]:
    """Per task, the task whose execution start begins its pre-load (-1: none), by
    :func:`~planning.protocol.preload_order.preload_anchors` over each worker's chain: a pre-loaded task is one
    with ``preload`` that downloads something."""
    anchor = [-1] * len(layout.prev)

    def preloaded(i: int) -> bool:
        return preload[i] and any(r and d > 0 for r, d in zip(layout.remote[i], download_s[i]))

    for first in (i for i, p in enumerate(layout.prev) if p < 0):
        chain, i = [], first
        while i >= 0:
            chain.append(i)
            i = nxt[i]
        for i, a in preload_anchors(chain, preloaded).items():
            anchor[i] = a
    return anchor


def time_overlapped(ev: "ScheduleEvaluator", layout: Layout, profiles: tuple[str, ...], exec_s: Sequence[float],
                    warm_pool: Mapping[str, int] | None = None, pooled: bool = True) -> ScheduleTimes:
    """Time ``layout`` (profiles per worker number) under pre-load and delayed I/O, with the pool rule
    (``pooled=False``: every worker starts cold, as :meth:`ScheduleEvaluator.run`)."""
    n, m = len(ev.ids), len(layout.workers)
    worker, prev, store, remote = layout.worker, layout.prev, layout.store, layout.remote
    lazy = layout.lazy or (False,) * n
    preload = layout.preload or (False,) * n
    parents, children = ev.parents, ev.children
    invoke, coord = ev.invoke_s, ev.coordination_s
    warm = layout.warm or (-1.0,) * m
    nxt, last_task, waiting = worker_order(layout, parents, m)
    anchor = _anchors(layout, preload, ev.download_s, nxt) if any(preload) else None
    lists = tuple([0.0] * n for _ in range(8))
    ready, wstart, begin, dend, xstart, xend, done, free = lists
    startup = [0.0] * n
    exec_list = [float(x) for x in exec_s]
    reused = [False] * m
    idle: dict[str, list[float]] = {p: [0.0] * int(k) for p, k in (warm_pool or {}).items()}
    stops: list[tuple[float, int]] = []

    def key(i: int) -> float:
        if prev[i] < 0 and warm[worker[i]] >= 0:
            return warm[worker[i]]
        return _arrival(parents[i], worker[i], worker, done, free, invoke, coord)[1]

    heap = [(key(i), i) for i in range(n) if waiting[i] == 0]
    heapq.heapify(heap)
    while heap:
        t, i = heapq.heappop(heap)
        w = worker[i]
        s = 0.0
        if prev[i] < 0 and pooled:
            s, reused[w] = pooled_startup(ev, idle, stops, profiles, w, t)
        elif prev[i] < 0:
            s = ev.startup_of(profiles[w])
        overlapped_task(i, parents[i], w, prev[i], s, lists, worker, remote[i], ev.download_s[i], exec_list[i],
                        ev.upload_s[i], store[i], lazy[i], preload[i], invoke, coord, warm[w],
                        anchor[i] if anchor is not None else -1)
        startup[i] = s
        if last_task[w] == i:
            heapq.heappush(stops, (done[i], w))
        for c in (*children[i], nxt[i]):
            if c >= 0:
                waiting[c] -= 1
                if waiting[c] == 0:
                    heapq.heappush(heap, (key(c), c))
    # a worker's stop is its last done: with delayed I/O, an earlier task's upload may end later
    return ev.assemble(layout, profiles, exec_list, startup, ready, wstart, begin, dend, xend, done, tuple(reused),
                       xstart)
