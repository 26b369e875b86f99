"""A simulated run's per-task columns, assembled once at its end from what the worker loop recorded.

The loop records per task only what depends on contention - download start and
end, execution end, done - and each worker's tasks in the order it ran them; the
rest follows with the same floating-point operations the loop would have used
(so the same values bit for bit): execution starts ``task_overhead_s`` after the
downloads; the output is stored when the task is done; a worker starts its first
task at its own start (after its start-up, cold or warm) and each later one at the
counter update of the one before (``done + coordination_s``).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from simulator.engine import Run


def task_columns(run: "Run", overlap: Any = None) -> dict[str, Any]:
    """The per-task columns of a finished run (topological order); every task ran (:meth:`Run.run` checked)."""
    n = run.model.n
    if run.flat_rows:     # (the fast path's rows, flat: one conversion, no transposition in Python)
        flat = np.fromiter(run.flat_rows, dtype=np.float64, count=len(run.flat_rows)).reshape(-1, 5)
        order = flat[:, 0].astype(np.int64)    # (task positions: integers, exact in a float64)
        columns = flat[:, 1:].T
    else:
        rows = tuple(zip(*run.rows)) if run.rows else ((), (), (), (), ())
        # np.fromiter with a count: a tuple of Python numbers converts several times faster than by np.asarray
        order = np.fromiter(rows[0], dtype=np.int64, count=len(rows[0]))
        columns = [np.fromiter(values, dtype=np.float64, count=len(values)) for values in rows[1:]]

    def scattered(values: np.ndarray) -> np.ndarray:
        out = np.empty(n, dtype=np.float64)
        out[order] = values
        return out

    begin, dend, xend, done = columns
    tasks: dict[str, Any] = {"download_start_s": scattered(begin), "download_end_s": scattered(dend),
                             "exec_end_s": scattered(xend), "done_s": scattered(done)}
    tasks["exec_start_s"] = tasks["download_end_s"] + run.platform.task_overhead_s
    if overlap is not None:           # pre-load: a task may wait for the task before after its downloads
        tasks["exec_start_s"] = np.asarray(overlap.exec_start, dtype=np.float64)
    tasks["upload_end_s"] = tasks["done_s"].copy()    # the output is stored when the task is done
    tasks["output_bytes"] = np.fromiter(run.out_bytes, dtype=np.float64, count=n)
    free = tasks["done_s"]
    if overlap is not None and any(overlap.lazy):   # delayed I/O: a worker moves on at a lazy task's execution end
        free = np.where(np.asarray(overlap.lazy, dtype=bool), tasks["exec_end_s"], tasks["done_s"])
    tasks.update(_placement_columns(run, free))
    # a compiled protocol that runs every task on its worker's profile: the trace takes the profiles by worker
    # (``worker_code``) instead of converting one name per task
    same = run.tables is not None and not run.model.other_profile
    tasks["profile"] = None if same else list(run.exec_profile)
    tasks["ready_s"] = run.ready_at
    return tasks


def _placement_columns(run: "Run", done: np.ndarray) -> dict[str, Any]:
    """Each task's worker (``worker_code``: its row in the run's workers), cold start, start-up and worker
    start, from the workers' rows and run orders (``done``: when each task's worker moved on)."""
    n, W = run.model.n, run.workers
    counts = np.fromiter((len(r) for r in run.ran_by), dtype=np.int64, count=len(run.ran_by))
    flat = np.fromiter(itertools.chain.from_iterable(run.ran_by), dtype=np.int64, count=int(counts.sum()))
    code = np.zeros(n, dtype=np.int64)
    code[flat] = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    first = np.zeros(n, dtype=bool)
    opens = np.cumsum(counts) - counts
    first[flat[opens[counts > 0]]] = True
    previous = np.zeros(n, dtype=np.int64)
    previous[flat[1:]] = flat[:-1]            # (across two workers only at a first task, which does not use it)
    start = np.asarray(W["start_s"], dtype=np.float64)[code]
    startup = np.asarray(W["startup_s"], dtype=np.float64)[code]
    return {"worker_code": code,
            "cold_start": first & np.asarray(W["cold_start"], dtype=bool)[code],
            "startup_s": np.where(first, startup, 0.0),
            "worker_start_s": np.where(first, start, done[previous] + run.platform.coordination_s)}
