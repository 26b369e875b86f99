"""The worker loop when transfers overlap executions (pre-load, delayed I/O): background channels per worker.

The timing rule is the planner's (:mod:`planning.schedule.overlap`); this loop meets it
in simulated time, with the platform's shared link, stager and host in the way:

* **pre-load**: when a worker starts executing a task that anchors a pre-load (the
  worker's first, or a pre-loaded task: :func:`planning.protocol.preload_order.preload_anchors`),
  a coroutine per input (:func:`prefetch`, :func:`fetch_one`) fetches the next pre-loaded task's inputs: each
  waits until its input is stored (the storing task wakes it), and ``Platform.preload_lag_s``
  more (the executor's thread's wake-up), then moves it through storage like any download; the
  worker executes that task at ``max(its notification, the task before done, the prefetch's end)``;
* **delayed I/O**: a lazy output's upload is a coroutine of its own
  (:func:`background_upload`): the worker moves on at the execution's end, releasing
  its own children then (their counters are updated at once); the upload releases the
  other workers' children and a sink's client fetch when it ends.  A worker stops once
  its last upload has ended.

On a shared host (``Platform.host_cores``) a background transfer is also CPU work
beside the executions (:mod:`simulator.quota`): its worker's thread's inside the worker's own CPU quota, beside
the task it runs (``Platform.fetch_thread_s_per_byte``, ``upload_thread_s_per_byte``), the server's on the
host's cores (``fetch_server_s_per_byte``, ``upload_server_s_per_byte``), so it slows the worker's own task and,
when the cores are busy, the others - a lazy upload less when its thread is niced (:func:`upload_weight`, for a
worker whose uploads the plan gives room: ``lazy_upload_yields``); a foreground transfer's CPU (both sides) is
charged to the host at full weight (:func:`simulator.transfers.move`).

Only protocols that say so (:meth:`WorkerProtocol.preloads`, ``lazy_upload``) run
this loop, so the base loop (:mod:`simulator.worker_loop`, the hot path) is untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from planning.protocol.preload_order import preload_anchors
from simulator.host import BACKGROUND_UPLOAD_NICE, BACKGROUND_UPLOAD_THREAD_SHARE, nice_weight
from simulator.lifecycle import host_start, started, stopped
from simulator.loop import Coroutine, spawn, wake
from simulator.quota import charge_transfer
from simulator.transfers import client_fetch, move
from simulator.worker_loop import shared_execution, worker_tasks

if TYPE_CHECKING:  # pragma: no cover
    from simulator.engine import Run


class Overlap:
    """A run's state for overlapped transfers: what each engine reads of the protocol, and when outputs are stored."""

    def __init__(self, run: "Run", preload: list[bool], lazy: list[bool]) -> None:
        n = run.model.n
        self.preload, self.lazy = preload, lazy
        #: per task, when its output is stored (None: not yet known) and the prefetches waiting for it
        self.stored_at: list[float | None] = [None] * n
        self.waiters: dict[int, list[Coroutine]] = {}
        #: per task, its execution's start (the columns' ``exec_start_s``)
        self.exec_start: list[float] = [0.0] * n
        parents = run.model.protocol.topology.parents
        self.fetched_parents = [[p for p, f in zip(ps, fs) if f] for ps, fs in zip(parents, run.tables.fetched)]

    def stored(self, run: "Run", i: int, at: float) -> None:
        """Task ``i``'s output is stored at ``at``: wake the prefetches waiting for it then."""
        self.stored_at[i] = at
        now = run.env._now
        for waiter in self.waiters.pop(i, ()):
            wake(run.env, waiter, None, at - now if at > now else 0.0)


def overlap_for(run: "Run") -> Overlap | None:
    """The run's :class:`Overlap` when its compiled protocol overlaps transfers and executions, else None."""
    from planning.protocol import WorkerProtocol

    protocol, tables = run.model.protocol, run.tables
    if tables is None:
        return None
    cls = type(protocol)
    preload: list[bool] = []
    if cls.preloads is not WorkerProtocol.preloads and protocol.preloads():
        preload = [bool(protocol.preloads_inputs(t)) for t in protocol.topology.ids]
    lazy: list[bool] = []
    if cls.lazy_upload is not WorkerProtocol.lazy_upload:
        ids, worker = protocol.topology.ids, tables.worker
        lazy = [bool(s) and bool(protocol.lazy_upload(ids[i], worker[i])) for i, s in enumerate(tables.store)]
    if not any(preload) and not any(lazy):
        return None
    return Overlap(run, preload or [False] * run.model.n, lazy or [False] * run.model.n)


class _Box:
    """A prefetch's times, its inputs still moving, the worker waiting for its end, and the worker's loop
    (whose node a shared host charges the transfer's CPU to)."""

    __slots__ = ("start", "end", "left", "waiter", "owner", "quota")

    def __init__(self, owner: Coroutine | None = None, quota: float = 1.0) -> None:
        self.start = self.end = None
        self.left = 0
        self.waiter: Coroutine | None = None
        self.owner, self.quota = owner, quota


def charge_background(run: "Run", nbytes: float, owner: Coroutine | None, quota: float) -> None:
    """On a shared host: a pre-load's CPU, the fetching thread's in its worker's ``quota``, the server's on the
    host (:func:`simulator.quota.charge_transfer`)."""
    charge_transfer(run, nbytes, False, owner, quota)


def upload_weight() -> float:
    """The CPU weight of the server's side of a lazy upload whose thread is niced (it yields to the executions,
    as the executor's uploader does: ``executor.switching.yield_to_running_work``): the server only reads what the
    thread writes, so it moves at the thread's pace - the thread's weight for its share of the work
    (0.107 / 0.5 = 0.21)."""
    return min(1.0, nice_weight(BACKGROUND_UPLOAD_NICE) / BACKGROUND_UPLOAD_THREAD_SHARE)


def charge_upload(run: "Run", nbytes: float, worker: str, owner: Coroutine | None, quota: float) -> None:
    """On a shared host: a lazy upload's CPU (:func:`simulator.quota.charge_transfer`), the thread at CFS's nice
    weight and the server at :func:`upload_weight` when ``worker``'s uploads yield (the protocol's
    ``lazy_upload_yields``), else both at full weight."""
    if run.model.protocol.lazy_upload_yields(worker):
        charge_transfer(run, nbytes, True, owner, quota, nice_weight(BACKGROUND_UPLOAD_NICE), upload_weight())
    else:
        charge_transfer(run, nbytes, True, owner, quota)


def prefetch(run: "Run", i: int, box: _Box) -> None:
    """Start fetching task ``i``'s inputs, each as soon as it is stored (one coroutine per input,
    :func:`fetch_one`); the last to end records the times in ``box`` and wakes its waiter."""
    parents, sizes = run.overlap.fetched_parents[i], run.fetch[i]
    inputs = [(parents[k] if k < len(parents) else -1, b) for k, b in enumerate(sizes) if b > 0]
    if not inputs:                   # nothing to move: done now
        box.start = box.end = run.env._now
        return
    box.left = len(inputs)
    for p, b in inputs:
        spawn(run.env, fetch_one, run, p, b, box)


def fetch_one(run: "Run", p: int, nbytes: float, box: _Box, me: Coroutine) -> Iterator[float | None]:
    """One pre-loaded input (parent ``p``'s output; -1: a staged input, there now) from when it is stored (or now,
    stored before), ``Platform.preload_lag_s`` later: the real thread's wake-up after the commit that stores it."""
    ov, env = run.overlap, run.env
    if p >= 0:
        if ov.stored_at[p] is None:
            ov.waiters.setdefault(p, []).append(me)
            yield
        at = ov.stored_at[p]
        if at > env._now:
            yield at - env._now
    lag = run.platform.preload_lag_s
    if lag > 0:                      # the fetching thread's wake-up (Platform.preload_lag_s)
        yield lag
    if box.start is None or env._now < box.start:
        box.start = env._now
    charge_background(run, nbytes, box.owner, box.quota)
    end, _ = yield from move(run, [nbytes], run.down, me, charged=True)
    end = end if end > env._now else env._now
    box.end = end if box.end is None or end > box.end else box.end
    box.left -= 1
    if box.left == 0 and box.waiter is not None:
        wake(env, box.waiter, None, box.end - env._now if box.end > env._now else 0.0)


def background_upload(run: "Run", i: int, w: str, row: list, flight: list, owner: Coroutine, quota: float,
                      me: Coroutine) -> Iterator[float | None]:
    """Task ``i``'s lazy upload from now (worker loop ``owner``'s): then its row, its stored time, and the other
    workers' children."""
    env = run.env
    charge_upload(run, run.out_bytes[i], w, owner, quota)
    done, _ = yield from move(run, [run.out_bytes[i]], run.up, me, charged=True)
    done = done if done > env._now else env._now
    run.overlap.stored(run, i, done)
    if run.record:
        run.rows.append((*row, done))
    tdec = done + run.platform.coordination_s
    if tdec > env._now:
        yield tdec - env._now
    release_children(run, i, w, tdec, local=False)
    flight[0] -= 1
    if flight[0] == 0 and flight[1] is not None:
        wake(env, flight[1], None, 0.0)


def release_children(run: "Run", i: int, w: str, tdec: float, local: bool | None) -> None:
    """The compiled downstream step (:func:`simulator.worker_loop.downstream_step`) for task ``i``'s children
    planned on its worker (``local=True``), on others (``False``: and a sink's client fetch) or all (None)."""
    kids = run.downstream[i]
    if not kids:
        if local is not True:
            client_fetch(run, i, tdec)
        return
    level_delay, dispatcher = run.platform.level_delay_s, run.dispatcher
    for j, here, cw, cstart in kids:
        if local is not None and here != local:
            continue
        run.counter[j] -= 1
        if run.counter[j] == 0:
            run.ready_at[j] = tdec
            if not here:
                run.release(j, cw, cstart, tdec, w)
            elif dispatcher.active:
                run.arrival[j] = dispatcher.serve(tdec + level_delay, w)
            else:
                run.arrival[j] = tdec + level_delay


def task_inputs(run: "Run", i: int, begin: float, box: _Box | None, me: Coroutine) -> Iterator[float | None]:
    """Task ``i``'s inputs from ``begin``: pre-loaded (``box``: wait for the prefetch's end) or fetched now;
    returns ``(download start, download end, execution may start)``."""
    env = run.env
    if box is not None:              # pre-loaded while the tasks before ran
        if box.left > 0 or box.end is None:
            box.waiter = me
            yield
        return box.start, box.end, box.end if box.end > begin else begin
    if begin > env._now:
        yield begin - env._now
    dend = begin
    if run.fetch[i]:
        end, _ = yield from move(run, run.fetch[i], run.down, me)
        dend = end if end > begin else begin
    return begin, dend, dend


def task_output(run: "Run", i: int, w: str, row: list, flight: list, quota: float,
                me: Coroutine) -> Iterator[float | None]:
    """Task ``i``'s output after its execution ended (now): a lazy upload in the background, else stored now;
    returns ``(when the worker moves on, which children it releases then: True its own, None all)``."""
    env, xe, nbytes = run.env, row[3], run.out_bytes[i]
    if run.store[i] and nbytes > 0 and run.overlap.lazy[i]:
        flight[0] += 1
        spawn(env, background_upload, run, i, w, row, flight, me, quota)
        return xe, True
    done = xe
    if run.store[i] and nbytes > 0:
        done, _ = yield from move(run, [nbytes], run.up, me)
        done = done if done > xe else xe
    run.overlap.stored(run, i, done)
    if run.record:
        run.rows.append((*row, done))
    return done, None


def overlap_loop(run: "Run", w: str, start: float, me: Coroutine) -> Iterator[float | None]:
    """Logical worker ``w`` with pre-load and delayed I/O (see the module docstring)."""
    env, ov, platform = run.env, run.overlap, run.platform
    overhead, coord = platform.task_overhead_s, platform.coordination_s
    profile, tasks, ran, _ = worker_tasks(run, w)
    if run.cpu is None:
        warm, startup, free = started(run, profile, start)
    else:
        warm, startup, free = yield from host_start(run, profile, start, me, w)
    busy = 0.0
    flight: list[Any] = [0, None]       # lazy uploads in flight, and this loop when it waits for them
    box: _Box | None = None             # the pre-load under way, for task ``box_for``
    box_for = -1
    begins = {a: t for t, a in preload_anchors(tasks, lambda t: ov.preload[t] and any(b > 0 for b in run.fetch[t]))
              .items()}                 # anchor -> the task whose pre-load its execution start begins
    for i in tasks:
        if run.arrival[i] is None:
            run.waiting[w] = (i, me)
            yield
        a = run.arrival[i]
        begin = a if a > free else free
        d0, dend, xs = yield from task_inputs(run, i, begin, box if box_for == i else None, me)
        target = begins.get(i, -1)
        if target >= 0:
            if xs > env._now:
                yield xs - env._now
            box, box_for = _Box(me, run.model.cpus[run.exec_profile[i]]), target
            prefetch(run, target, box)
        ov.exec_start[i] = xs + overhead
        if run.cpu is None:
            xe = xs + overhead + run.exec_s[i]
        else:
            xe = yield from shared_execution(run, i, xs + overhead, me)
        if xe > env._now:
            yield xe - env._now
        done, local = yield from task_output(run, i, w, [i, d0, dend, xe], flight, run.model.cpus[profile], me)
        busy += done - begin
        tdec = done + coord
        if tdec > env._now:
            yield tdec - env._now
        release_children(run, i, w, tdec, local)
        free = tdec
    if flight[0] > 0:                    # the worker lives until its last upload has ended
        flight[1] = me
        yield
        free = max(free, env._now)
    stopped(run, w, profile, warm, start, startup, free, busy, len(ran), ran)
