"""Per-task output retention: a stored output leaves the server once its last reader has read it.

**What it does.**  Every output a consumer on another worker fetches is counted
down as its readers complete (:meth:`WorkerProtocol.stored_readers`, in each
reader's commit); the last reader deletes it.  A sink's output stays: the client
fetches it.  So a long run's memory on the server is bounded by what is in flight,
not by everything the run ever produced.

**What it assumes.**  A static plan: the number of fetches of each output is a
function of the plan (:meth:`WorkerProtocol.compile`'s ``fetched`` table).  A
dynamic (WUKONG) plan decides its fetches at run time, so it keeps every output.
A task's reads are counted in its commit, so a re-run after a worker's death finds
the inputs of every task that had not committed; an output that a re-run might have
to recover (its task, or one of its fetchers, is read from memory by a later task
of its worker) is kept (:func:`removable_outputs`) - until the sinks are done: the
worker that completes a sink, seeing every sink's output stored, removes every
other output left on the server (``removes_leftovers``), so none outlives the run's
last task even when a reader list was incomplete.

**What it costs.**  One ``HINCRBY`` per fetched input inside the commit that
already happens (no round trip); no change to any timing, so the planned and
simulated makespans equal the base protocol's.  The readers are named once, by the
client before the run's clock starts, and travel with the protocol to every worker
(:class:`~planning.protocol.base.shipped_property`).  In the executor the last reader's
commit *sets the output aside* (an O(1) ``RENAME``, :mod:`executor.scripts`) and its
worker frees it right after the commit's reply
(:func:`executor.worker_data.free_released`): freeing a large value takes the
single-threaded server time (2.2 ms per 32 MB), which inside the commit delayed every
notice the commit carries (issue 17: fan-large's gather freed seven 32 MB partials in
its commit, 9.7 ms against 1.2 ms, +2.4 % real for critical-path).  A background
(delayed I/O) commit deletes in place: it is off the critical path already.  Its effect is the server's memory:
:func:`server_memory` measures it on any trace (planned, simulated or real).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from planning.protocol.base import WorkerProtocol, shipped_property


class OutputRetention(WorkerProtocol):
    """Delete a stored output from the server when its last reader has read it (sinks' outputs stay)."""

    #: the name a config or ``--protocol`` / ``optimizations`` uses
    optimization = "retention"

    def removes_leftovers(self) -> bool:
        """The sink task removes what is left (see :meth:`WorkerProtocol.removes_leftovers`)."""
        return True

    def stored_readers(self, task_id: str) -> tuple[str, ...]:
        """The tasks that fetch this output, when deleting it after them is safe (else none: keep it)."""
        return self._readers.get(task_id, ())

    @shipped_property
    def _readers(self) -> dict[str, tuple[str, ...]]:
        """:func:`removable_outputs` of this plan: named by the client and shipped to the workers (in a worker they
        compiled the whole plan in its first fetching task, between its execution's end and its commit: epigenomics
        heft, eight of its nine workers, issue 17)."""
        return removable_outputs(self)


def removable_outputs(protocol: WorkerProtocol) -> dict[str, tuple[str, ...]]:
    """Per output that may leave the server, the fetchers whose completions remove it.

    A worker that dies is re-run: the tasks its predecessor committed are passed, but
    one whose output a later task of the worker reads from memory is recovered - read
    from storage if stored, else computed again from its inputs.  So an output stays
    when its own task, or any of its fetchers, has a reader on its own worker (a re-run
    may need it); a sink's stays for the client.
    """
    tables = protocol.compile()
    if tables is None:
        return {}
    ids = protocol.topology.ids
    read_locally = {ids[p] for parents in tables.local for p in parents}
    return {p: tuple(cs) for p, cs in fetch_readers(protocol).items()
            if p not in read_locally and not any(c in read_locally for c in cs)}


def fetch_readers(protocol: WorkerProtocol) -> dict[str, list[str]]:
    """Per task, the children that fetch its output from storage (the compiled ``fetched`` table)."""
    tables = protocol.compile()
    if tables is None:          # a dynamic protocol: fetches are decided live, keep everything
        return {}
    ids, parents = protocol.topology.ids, protocol.topology.parents
    readers: dict[str, list[str]] = {}
    for child, (ps, fetched) in enumerate(zip(parents, tables.fetched)):
        for p, f in zip(ps, fetched):
            if f:
                readers.setdefault(ids[p], []).append(ids[child])
    return readers


def server_memory(tasks: Any, protocol: WorkerProtocol, stored: Any = None) -> dict[str, float]:
    """The server's memory over a run, from its task rows: peak bytes and byte-seconds of stored outputs.

    ``tasks`` is a trace's (or a plan's) task table with ``task_id`` (column or
    index), ``upload_end_s``, ``done_s`` and ``output_bytes``; an output is on the
    server from its upload's end until the completion of its last reader when
    ``protocol.stored_readers`` names its readers, else until the run ends.
    ``stored`` (bool per row) says which outputs were stored; by default those whose
    upload took time or that the protocol's tables store.
    """
    t = tasks.reset_index() if "task_id" not in tasks.columns else tasks
    ids = t["task_id"].astype(str).tolist()
    up, done = t["upload_end_s"].to_numpy(float), t["done_s"].to_numpy(float)
    nbytes = t["output_bytes"].to_numpy(float)
    if stored is None:
        tables = protocol.compile()
        index = protocol.index
        stored = np.array([bool(tables.store[index[x]]) for x in ids]) if tables is not None else np.ones(len(ids), bool)
    row = {x: k for k, x in enumerate(ids)}
    end = float(np.nanmax(done)) if len(done) else 0.0    # byte-seconds are counted up to the last completion
    events: list[tuple[float, float]] = []
    for k, x in enumerate(ids):
        if not stored[k] or nbytes[k] <= 0:
            continue
        removed = math.inf             # kept until the run's keys are cleaned up
        readers = protocol.stored_readers(x)
        if readers:
            removed = max((done[row[c]] for c in readers if c in row), default=math.inf)
        events += [(up[k], nbytes[k]), (removed, -nbytes[k])]
    # a reader's commit deletes its inputs and stores its output at once: removals first at the same instant
    events.sort(key=lambda e: (e[0], e[1]))
    level = peak = area = 0.0
    last = 0.0
    for at, delta in events:
        at = min(at, end)
        area += level * max(0.0, at - last)
        last = at
        level += delta
        peak = max(peak, level)
    return {"peak_bytes": float(peak), "byte_s": float(area)}
