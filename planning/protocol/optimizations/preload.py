"""Pre-load: a worker fetches a later planned task's inputs in the background while it runs the tasks before it.

**What it does.**  On a static plan a worker knows its sequence.  Once it runs a
task, it fetches the next pre-loaded task's remote inputs as soon as they are stored
(on another channel: the simulator's second coroutine per worker, the executor's
background thread with its own connection), and the bytes wait in its memory until
the task runs.  So a download is hidden behind the executions before it.  One
pre-load at a time, begun at the execution start of its anchor - the pre-loaded task
before it on the worker, else the worker's first task
(:func:`planning.protocol.preload_order.preload_anchors`, followed by every engine).
The timing rule, written once for the planner's schedule and followed by the
simulator: each input's download starts at ``max(that input stored, the anchor's
execution start)`` and the task executes at ``max(downloads done, the task before
done, its notification)`` (:mod:`planning.schedule.overlap`).  A worker's first task
fetches as in the base (the worker is not running before it).

**What it assumes.**  A static plan (the sequence is known); memory for one task's
inputs beside the running task's, held from their download to the task's start.
**What it costs.**  That memory, for as long as the bytes wait: :func:`preload_memory`
measures it (peak bytes, byte-seconds) on any trace; in the executor a thread and a
second connection per worker process while it runs, and the thread's wait for the
next task's inputs (one ``EXISTS`` look, then a blocking pop of the wake-ups the
commits that store them push: :mod:`executor.worker_preload`); its CPU beside the running task, which the
simulator charges to a shared host's cores (:mod:`simulator.overlap_loop`).

**What it leaves out.**  A task whose fetched inputs come to fewer than
:data:`PRELOAD_MIN_BYTES` is not pre-loaded (:meth:`Preload.preloads_inputs`), in
every engine: the executor's background thread costs the task beside it 1-3 ms
(its start, its round trips, the hand-overs of the GIL; measured beside a CPU-bound task
on this 2-CPU host, issue 17), while one inline fetch moves ~1 MiB per millisecond
there; below a few MiB the fetch it would hide is smaller than what it costs
(epigenomics' 86 KB inputs made pre-load 2-3 % slower, not faster).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from planning.protocol.base import WorkerProtocol, shipped_property

#: A task whose fetched inputs come to fewer bytes is not pre-loaded: it fetches them when it starts (see the
#: module docstring; scratch measurement of issue 17, medians of 120 interleaved pairs, load 3-4: a thread beside a
#: 10 ms CPU-bound task cost +1.1 to +3.0 ms against an inline fetch for 256 KiB to 8 MiB; inline 1 MiB ~ 0.7-1.2 ms).
PRELOAD_MIN_BYTES = 4 << 20


class Preload(WorkerProtocol):
    """Fetch the next pre-loaded task's inputs in the background while the tasks before it run."""

    #: the name a config or ``--protocol`` / ``optimizations`` uses
    optimization = "preload"

    def preloads(self) -> bool:
        return True

    def preloads_inputs(self, task_id: str) -> bool:
        """Only a task whose fetched inputs (the compiled ``fetch``) come to :data:`PRELOAD_MIN_BYTES` or more."""
        return task_id in self._preloaded

    @shipped_property
    def _preloaded(self) -> frozenset[str]:
        """The tasks whose inputs are pre-loaded, from the compiled tables: shipped to the workers (asked in one,
        they compiled the whole plan at its pre-load thread's start, on the run's path)."""
        tables = self.compile()
        if tables is None:
            return frozenset()
        ids = self.topology.ids
        return frozenset(ids[i] for i, sizes in enumerate(tables.fetch) if sum(sizes or ()) >= PRELOAD_MIN_BYTES)


def preload_memory(tasks: Any, protocol: WorkerProtocol) -> dict[str, float]:
    """Memory held by pre-loaded inputs over a run: peak bytes (over all workers at once) and byte-seconds.

    ``tasks`` is a trace's (or plan's) task table (``task_id`` column or index) with
    ``download_end_s`` and ``exec_start_s``; a task's fetched bytes (the protocol's
    compiled ``fetch``) are held from its downloads' end to its execution's start.
    """
    tables = protocol.compile()
    if tables is None:
        return {"peak_bytes": 0.0, "byte_s": 0.0}
    t = tasks.reset_index() if "task_id" not in tasks.columns else tasks
    index = protocol.index
    events: list[tuple[float, float]] = []
    area = 0.0
    for x, d1, xs in zip(t["task_id"].astype(str), t["download_end_s"].to_numpy(float),
                         t["exec_start_s"].to_numpy(float)):
        held = float(np.sum(tables.fetch[index[x]])) if tables.fetch[index[x]] else 0.0
        if held > 0 and xs > d1:
            area += held * (xs - d1)
            events += [(d1, held), (xs, -held)]
    events.sort(key=lambda e: (e[0], e[1]))
    level = peak = 0.0
    for _, delta in events:
        level += delta
        peak = max(peak, level)
    return {"peak_bytes": float(peak), "byte_s": float(area)}


__all__ = ["PRELOAD_MIN_BYTES", "Preload", "preload_memory"]
