"""The timing rule over a whole level of tasks at once (numpy arrays), for full runs of wide layouts.

:meth:`~planning.schedule.ScheduleEvaluator.run` times one task at a time with
:func:`~planning.schedule.timing.time_task`: a few microseconds of interpreter per
task, the largest part of a search planner's time at 10k tasks.  A task's times
depend only on its parents' and on the task before it on its worker, so every task
of one *level* (its longest path from a root, over the workflow's edges and the
workers' order) can be timed together: a 10k-task random layered DAG under the
locality layout has 100 levels, and a run takes about a third of the time.

The operations are :func:`~planning.schedule.timing.time_task`'s, on the same
float64 values in the same order (``(begin + download) + exec``, the latest parent
with ties to the highest index, ...), so the times are bit for bit the scalar
loop's; the tests compare them on random layouts.  A narrow layout (a chain: one
task a level) would pay the arrays' overhead per level for nothing:
:func:`worth_it` keeps those on the scalar loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

from planning.schedule.timing import Layout

if TYPE_CHECKING:  # pragma: no cover
    from planning.schedule.evaluator import ScheduleEvaluator

__all__ = ["Levels", "task_levels", "levels_if_worth_it", "time_levels", "worth_it"]

#: A layout is timed by levels when it has at least this many tasks per level on average (below, the
#: arrays' fixed cost per level outweighs the interpreter's per task) ...
MIN_TASKS_PER_LEVEL = 24
#: ... and at least this many tasks (building the levels is itself a pass over the tasks and edges).
MIN_TASKS = 512


class _Step(NamedTuple):
    """One level's constants: its tasks (those with parents first), their parents flattened, what the layout fixes."""

    tasks: np.ndarray           # task indices: the ``with_parents`` ones first, then the roots
    with_parents: int
    parents: np.ndarray         # the parents of tasks[:with_parents], flattened in in-edge order
    starts: np.ndarray          # where each of those tasks' parents start in ``parents`` (for reduceat)
    counts: np.ndarray          # how many parents each has
    parent_worker_of: np.ndarray    # worker number of tasks[:with_parents]
    worker: np.ndarray          # worker number of every task of the level
    before: np.ndarray          # the task before on the worker (-1: the worker's first)
    first: np.ndarray           # before < 0
    download: np.ndarray        # fetched inputs' seconds (the longest)
    upload: np.ndarray          # the upload's seconds where the task stores its output, else 0.0


class Levels:
    """A layout's tasks grouped by level, with every per-level array the timing reads but the profiles' values.

    Built once per layout (:meth:`~planning.schedule.ScheduleEvaluator.levels` keeps
    the last one): O(n + e).  ``level``: :func:`task_levels` of the layout, if taken already.
    """

    def __init__(self, ev: "ScheduleEvaluator", layout: Layout, level: Sequence[int] | None = None) -> None:
        parents, prev = ev.parents, layout.prev
        n = len(prev)
        level = task_levels(ev, layout) if level is None else level
        worker = np.asarray(layout.worker, dtype=np.int64)
        before_all = np.asarray(prev, dtype=np.int64)
        download = np.asarray(ev.input_download_s(layout), dtype=float)
        upload = np.where(np.asarray(layout.store, dtype=bool), np.asarray(ev.upload_s, dtype=float), 0.0) \
            if n else np.zeros(0)
        indegree = np.fromiter(map(len, parents), dtype=np.int64, count=n)
        levels = np.asarray(level, dtype=np.int64)
        # by level, then those with parents before the roots, then by index (stable)
        by_level = np.lexsort((indegree == 0, levels)) if n else np.zeros(0, dtype=np.int64)
        cuts = np.searchsorted(levels[by_level], np.arange(int(levels.max()) + 2 if n else 1))
        self.worker = worker
        self.steps: list[_Step] = []
        for k in range(len(cuts) - 1):
            tasks = by_level[cuts[k]:cuts[k + 1]]
            counts = indegree[tasks]
            inner = int(np.count_nonzero(counts))
            counts = counts[:inner]
            flat = np.fromiter((p for i in tasks[:inner].tolist() for p in parents[i]), dtype=np.int64,
                               count=int(counts.sum()))
            starts = np.zeros(inner, dtype=np.int64)
            if inner > 1:
                np.cumsum(counts[:-1], out=starts[1:])
            before = before_all[tasks]
            self.steps.append(_Step(tasks, inner, flat, starts, counts, worker[tasks[:inner]], worker[tasks], before,
                                    before < 0, download[tasks], upload[tasks]))

    def __len__(self) -> int:
        return len(self.steps)


def task_levels(ev: "ScheduleEvaluator", layout: Layout) -> list[int]:
    """Per task, its level: the longest path to it from a root over the workflow's edges and the workers' order."""
    parents, prev = ev.parents, layout.prev
    level = [0] * len(prev)
    for i in layout.order:
        lv = 0
        for p in parents[i]:
            if level[p] >= lv:
                lv = level[p] + 1
        b = prev[i]
        if b >= 0 and level[b] >= lv:
            lv = level[b] + 1
        level[i] = lv
    return level


def levels_if_worth_it(ev: "ScheduleEvaluator", layout: Layout) -> Levels | None:
    """``layout``'s :class:`Levels` when timing by levels pays for this shape (:func:`worth_it`), else None."""
    n = len(layout.prev)
    if n < MIN_TASKS:
        return None
    level = task_levels(ev, layout)
    return Levels(ev, layout, level) if worth_it(n, max(level) + 1) else None


def worth_it(n_tasks: int, n_levels: int) -> bool:
    """Whether timing by levels beats the scalar loop for a layout of this shape (see the module docstring)."""
    return n_tasks >= MIN_TASKS and n_tasks >= MIN_TASKS_PER_LEVEL * n_levels


def time_levels(ev: "ScheduleEvaluator", layout: Layout, levels: Levels, startup_of_worker: Sequence[float],
                exec_s: Sequence[float]) -> tuple[np.ndarray, ...]:
    """Per-task ``(startup, ready, worker start, begin, download end, execution end, done)`` arrays of one run.

    ``startup_of_worker``: each worker number's start-up (paid by its first task);
    ``exec_s``: each task's execution seconds.  The values of
    :func:`~planning.schedule.timing.time_task` applied in topological order.
    """
    n = len(layout.worker)
    startup_w = np.asarray(startup_of_worker, dtype=float)
    execs = np.asarray(exec_s, dtype=float)
    invoke, coord = ev.invoke_s, ev.coordination_s
    warm = np.asarray(layout.warm, dtype=float) if layout.warm is not None else None
    worker_all = levels.worker
    startup, ready, wstart, begin, dend, xend, done = (np.zeros(n) for _ in range(7))
    for step in levels.steps:
        tasks, k = step.tasks, step.with_parents
        if k:
            seen = done[step.parents]
            latest = np.maximum.reduceat(seen, step.starts)
            r_in = latest + coord
            if invoke:
                # the last parent: the latest done, ties to the highest index (last_parent); invocation when elsewhere
                last = np.maximum.reduceat(np.where(seen == np.repeat(latest, step.counts), step.parents, -1),
                                           step.starts)
                a_in = r_in + np.where(worker_all[last] != step.parent_worker_of, invoke, 0.0)
            else:
                a_in = r_in
            if k < len(tasks):
                roots = len(tasks) - k
                r = np.concatenate((r_in, np.zeros(roots)))
                arrival = np.concatenate((a_in, np.full(roots, invoke)))
            else:
                r, arrival = r_in, a_in
        else:
            r, arrival = np.zeros(len(tasks)), np.full(len(tasks), invoke)
        first = step.first
        s = np.where(first, startup_w[step.worker], 0.0)
        ws = np.where(first, arrival, done[step.before])
        b = np.where(first, ws + s, np.maximum(arrival, ws))
        if warm is not None:
            w_at = warm[step.worker]
            pre = first & (w_at >= 0)
            if pre.any():       # pre-warmed: started at w_at, ready at w_at + startup
                ws = np.where(pre, w_at, ws)
                b = np.where(pre, np.maximum(arrival, w_at + s), b)
        de = b + step.download
        e = de + execs[tasks]
        startup[tasks], ready[tasks], wstart[tasks], begin[tasks] = s, r, ws, b
        dend[tasks], xend[tasks], done[tasks] = de, e, e + step.upload
    return startup, ready, wstart, begin, dend, xend, done
