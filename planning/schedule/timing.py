"""The timing rule of the analytical schedule, written once, and the records it fills.

:func:`time_task` is the protocol's recurrence for one task; the full run
(:meth:`planning.schedule.evaluator.ScheduleEvaluator.run`) and the incremental
re-timer (:class:`planning.schedule.retimer.Retimer`) both apply it, so they agree
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from planning.billing import BilledWorkers
from planning.profiles import Catalog

TransferFn = Callable[[float, str], float]
#: Transfer seconds of many sizes at once: ``(sizes array, direction) -> seconds array``.
TransferManyFn = Callable[[np.ndarray, str], np.ndarray]

TASK_COLUMNS = ("worker", "profile", "cold_start", "startup_s", "ready_s", "worker_start_s", "download_start_s",
                "download_end_s", "exec_start_s", "exec_end_s", "upload_start_s", "upload_end_s", "done_s",
                "input_bytes", "output_bytes", "stored")


def free_transfer(nbytes: float, direction: str) -> float:
    """Transfers that take no time (unlimited bandwidth, no latency)."""
    return 0.0


@dataclass(frozen=True)
class ScheduleResult(BilledWorkers):
    """Per-task phase times (a DataFrame indexed by task id), makespan, per-worker spans and cost."""

    tasks: pd.DataFrame
    workers: pd.DataFrame
    makespan_s: float



def last_parent(parents: Sequence[int], done: Sequence[float]) -> int:
    """The parent whose completion makes a task ready: the latest done, ties to the highest index.

    The one tie-break every timing of the protocol uses (the analytical schedule, its
    re-timer and the dynamic placement), so the worker that "completes the last
    dependency" is the same everywhere.
    """
    last = parents[0]
    best = done[last]
    for p in parents:
        d = done[p]
        if d > best or (d == best and p > last):
            best, last = d, p
    return last


def fetch_download_s(remote: Sequence[Sequence[bool]], download_s: Sequence[Sequence[float]]) -> list[float]:
    """Per task, the seconds its fetched inputs take to download (in parallel: the longest); 0 for none.

    A constant of the layout (which inputs are fetched) and the transfers (each
    input's seconds), not of the profiles: taken once per layout
    (:meth:`~planning.schedule.ScheduleEvaluator.input_download_s`), not per timing.
    """
    out = [0.0] * len(download_s)
    for i, row in enumerate(download_s):
        longest = 0.0
        for fetched, seconds in zip(remote[i], row):
            if fetched and seconds > longest:
                longest = seconds
        out[i] = longest
    return out


def time_task(ps: Sequence[int], w: int, before: int, startup: float, done: Sequence[float],
              worker: Sequence[int], download: float, exec_s: float,
              upload_s: float, store: bool, invoke: float, coord: float,
              warm: float = -1.0, last: int = -1) -> tuple[float, float, float, float, float, float]:
    """One task's planned times: ``(ready, worker start, begin, download seconds, execution end, done)``.

    The task is ready one coordination round trip after its last parent is done and
    reaches its worker after an invocation latency when that parent ran elsewhere (a
    root: from the client); its worker's first task pays the start-up, a later one
    waits for the task before it (``before``); the fetched inputs download in
    parallel (``download``: the longest, :func:`fetch_download_s`), then it
    executes and, when it stores its output, uploads it.  A worker pre-warmed at
    ``warm`` (>= 0) starts then, so its start-up overlaps the wait.
    ``last``: the caller's :func:`last_parent` of ``ps``, when it took it already (-1: taken here).
    """
    if ps:
        if last < 0:
            last = last_parent(ps, done)
        r = done[last] + coord
        arrival = r + (invoke if worker[last] != w else 0.0)
    else:
        r, arrival = 0.0, invoke
    if before < 0 and warm >= 0:      # pre-warmed: started ahead, ready at warm + startup
        ws = warm
        b = max(arrival, warm + startup)
    elif before < 0:
        ws = arrival
        b = ws + startup
    else:
        ws = done[before]
        b = arrival if arrival > ws else ws
    e = b + download + exec_s
    return r, ws, b, download, e, (e + upload_s if store else e)


@dataclass(frozen=True)
class Layout:
    """An assignment fixed for repeated timing: worker numbers, execution order, uploads.

    ``worker[i]`` numbers task ``i``'s worker (``workers`` names them, in order of
    first appearance in topological order), ``prev[i]`` is the task before ``i`` on
    its worker (-1 for the first), and the protocol's decisions: ``store[i]`` whether
    ``i`` uploads its output, ``remote[i][k]`` whether its ``k``-th parent's output
    is fetched, ``exec_profile[i]`` the profile it executes on (None: its worker's),
    ``warm[w]`` when worker ``w`` is started ahead of its first task (pre-warm).
    """

    workers: tuple[str, ...]
    worker: tuple[int, ...]
    order: tuple[int, ...]
    prev: tuple[int, ...]
    store: tuple[bool, ...]
    sequence: dict[str, list[str]]
    remote: Sequence[Sequence[bool]]
    exec_profile: tuple[str, ...] | None = None
    #: per worker number, when a pre-warmed worker is started (-1: by its first task); None: no worker is
    warm: tuple[float, ...] | None = None
    #: per task, whether its worker fetches its inputs while it runs the task before (pre-load); False: none does
    preload: bool | tuple[bool, ...] = False
    #: per task, whether its stored output is uploaded in the background (delayed I/O); None: none is
    lazy: tuple[bool, ...] | None = None

    @property
    def overlapped(self) -> bool:
        """Whether transfers overlap executions (pre-load, delayed I/O): :mod:`planning.schedule.overlap` times it."""
        return bool(self.preload) or self.lazy is not None


@dataclass(frozen=True)
class ScheduleTimes:
    """One timed run of a :class:`Layout`, as plain per-task lists (topological order) and per-worker lists."""

    layout: Layout
    profiles: tuple[str, ...]          # per worker number
    exec_s: list[float]
    startup: list[float]
    ready: list[float]
    worker_start: list[float]
    begin: list[float]                 # download start
    download_end: list[float]
    exec_end: list[float]
    done: list[float]
    makespan_s: float
    worker_start_s: list[float]        # per worker number: its first task's worker start
    worker_stop_s: list[float]         # per worker number: its last done
    busy_s: list[float]                # per worker number: sum of (done - download start)
    #: per worker number, whether it starts warm on an idle process (the pool rule); None: every worker cold
    reused: tuple[bool, ...] | None = None
    #: per task, when its execution starts, when transfers overlap executions (else its downloads' end)
    exec_start: list[float] | None = None

    def worker_costs(self, catalog: Catalog) -> np.ndarray:
        """Dollars per worker number: lifetime times its profile's price."""
        price = np.array([catalog[p].price_per_s for p in self.profiles])
        return (np.asarray(self.worker_stop_s) - np.asarray(self.worker_start_s)) * price

    def cost(self, catalog: Catalog) -> float:
        """Total dollars (the plan's ``cost`` up to the order of summation)."""
        return float(self.worker_costs(catalog).sum())


def worker_order(layout: Layout, parents: Sequence[Sequence[int]], m: int) -> tuple[list[int], list[int], list[int]]:
    """Per task the next on its worker (-1: none), per worker its last task, per task its unmet dependencies."""
    n, prev = len(layout.prev), layout.prev
    nxt, last_task = [-1] * n, [-1] * m
    for i in range(n):
        if prev[i] >= 0:
            nxt[prev[i]] = i
    for i in range(n):
        if nxt[i] < 0:
            last_task[layout.worker[i]] = i
    return nxt, last_task, [len(parents[i]) + (prev[i] >= 0) for i in range(n)]
