"""A replay's makespan alone, without the general loop: what a calibration's candidate fit needs.

Why a third loop beside :mod:`simulator.worker_loop` (the general interpreter) and
:mod:`simulator.fast_loop` (the default platform's hot path): ``planlab calibrate``
simulates every training execution at every point its fit tries - epigenomics' command
about 2,000 replays, four fifths of its CPU in the general loop - and asks only for the
makespan.  A replay of a real execution (:func:`simulator.simulate.compile_plan` of a
``recorded`` plan) on a workflow-system platform has free, latency-free storage and no
executor overheads; what it has is the serial stager and the serial dispatcher, which
:mod:`simulator.fast_loop` does not take.  Here that case is one closure per run: the
stager's and dispatcher's arithmetic inline, each task's staged bytes summed once per
compiled model, no per-task rows, no worker records, no sub-generators.

It is the general loop's arithmetic in the general loop's order: every wake-up the
general loop queues is queued here in the same sequence (time, then order of queueing,
as SimPy's ``(time, priority, id)`` entries with one priority), the same floating-point
expressions are evaluated (a zero latency or overhead is still added), and the stager
and dispatcher are served in the same order - so the makespan is the general loop's bit
for bit.  ``tests/test_makespan_replay.py`` compares the two on the shipped executions at
several platforms; :func:`applies` says which runs this path takes (any other is run by
:func:`simulator.simulate.run_once`).
"""

from __future__ import annotations

import itertools
import weakref
from heapq import heappop, heappush
from typing import Any, Iterator

from simulator.engine import Run
from simulator.model import CompiledModel
from simulator.platform import Platform
from simulator.simulate import run_once
from simulator.staging import staged_bytes

#: per compiled model: each task's fetched bytes and their external part (None: no fetch list), as the stager sums them
_STAGED: "weakref.WeakKeyDictionary[CompiledModel, tuple[list, list]]" = weakref.WeakKeyDictionary()


def applies(run: Run) -> bool:
    """Whether ``run`` is a case this path is written for: compiled decisions, no shared host, cluster or
    overlapping transfers, free storage (no link) with no latency, no executor overheads or start-ups, no
    pre-warmed workers, deterministic.  The stager, the dispatchers and the level delay may be anything."""
    p = run.platform
    return (run.tables is not None and run.live is None and run.overlap is None and run.cpu is None
            and run.nodes is None and run.link is None and not run.tables.warm_starts
            and run.down.values is None and run.up.values is None and run.cold.values is None
            and run.warm.values is None and p.storage_latency_s == 0.0 and p.task_overhead_s == 0.0
            and p.coordination_s == 0.0 and p.invoke_s == 0.0 and p.cold_start_s == 0.0 and p.warm_start_s == 0.0)


def makespan(model: CompiledModel, platform: Platform) -> float:
    """The makespan of one deterministic run of ``model`` on ``platform``: :func:`run_once`'s, computed by
    :func:`replay_makespan` when :func:`applies`, else by :func:`run_once` itself."""
    run = Run(model, platform, None, record=False)
    if not applies(run):
        return run_once(model, platform, record=False).makespan_s
    done = replay_makespan(run)
    # a stalled plan: the general loop names the task that never ran
    return done if done is not None else run_once(model, platform, record=False).makespan_s


def _staged(run: Run) -> tuple[list, list]:
    """Per task, the bytes its fetches put through the stager and the external part of them, summed in the
    order :meth:`simulator.staging.Stager.seconds` sums them (None where the task has no fetch list)."""
    found = _STAGED.get(run.model)
    if found is None:
        totals: list = []
        externals: list = []
        for sizes in run.fetch:
            if not sizes:
                totals.append(None)
                externals.append(None)
                continue
            total, external = staged_bytes(sizes)
            totals.append(total)
            externals.append(external)
        found = _STAGED[run.model] = (totals, externals)
    return found


def replay_makespan(run: Run) -> float | None:
    """Run ``run`` (for which :func:`applies`) to its end; its makespan, or None if some task never ran."""
    platform = run.platform
    exec_s, store_of, out_of, downstream_of = run.exec_s, run.store, run.out_bytes, run.downstream
    sequence, sink_bytes = run.tables.sequence, run.model.sink_bytes
    arrival, counter = run.arrival, run.counter
    fetch_total, fetch_external = _staged(run)
    shared = run.shared
    stager = run.stager
    per_byte, in_per_byte, out_per_byte = stager.per_byte, stager.in_per_byte, stager.out_per_byte
    level_delay, dispatcher = platform.level_delay_s, run.dispatcher
    dispatch = dispatcher.active
    # the one serial dispatcher alone (no machine starters): its FifoServer inline
    serial_only = dispatcher.machine_dispatch_s == 0.0 and dispatcher.dispatch_s > 0.0
    dispatch_s = dispatcher.dispatch_s
    dispatch_free = 0.0

    def dispatch_serve(t: float, w: str) -> float:
        nonlocal dispatch_free
        if serial_only:
            dispatch_free = (t if t > dispatch_free else dispatch_free) + dispatch_s
            return dispatch_free
        return dispatcher.serve(t, w)

    waiting: dict[str, tuple[int, list]] = {}
    queue: list = []
    ids = itertools.count()
    now = 0.0
    stage_free = 0.0        # the stager's FifoServer
    finished = 0
    end = 0.0
    nested = False          # whether a worker runs inside another's step (spawned by its release)

    def queued(target: float) -> bool:
        """Whether a worker's wait until ``target`` must be queued (see :func:`worker`); else the clock is moved
        there now (to ``now + (target - now)``, the queue entry's own arithmetic)."""
        nonlocal now
        t = now + (target - now)
        if nested or (queue and queue[0][0] <= t):
            return True
        now = t
        return False

    def stage(work: float) -> float:
        """When a group needing ``work`` stager seconds, arriving now, leaves the stager (its FifoServer)."""
        nonlocal stage_free
        stage_free = (now if now > stage_free else stage_free) + work
        return stage_free

    def worker(w: str, start: float, me: list) -> Iterator[float | None]:
        """:func:`simulator.worker_loop.worker_loop` for this case (see the module docstring).  A wait whose
        wake-up would be the next entry out of the queue (strictly earlier than every queued one, so popped
        before anything else is queued) advances the clock here instead of queueing: the same order.  Not
        while it runs inside another worker's step (``nested``): that one goes on at the current time."""
        nonlocal finished
        tasks = sequence.get(w, ())
        free = start + 0.0 * 1.0          # started(): a cold start of cold_start_s (0) times its ratio
        for i in tasks:
            if arrival[i] is None:
                waiting[w] = (i, me)
                yield None
            a = arrival[i]
            begin = a if a > free else free
            total = fetch_total[i]
            if total is None:
                dend = begin
            elif not shared:
                dend = begin + 0.0        # parallel_latency: no latency
            else:
                if begin > now and queued(begin):
                    yield begin - now
                # move(): the stager, then no link
                work = total * per_byte + fetch_external[i] * in_per_byte
                if work > 0 and (staged := stage(work)) > now and queued(staged):
                    yield staged - now
                dend = now
                dend = begin if dend < begin else dend
            xe = dend + 0.0 + exec_s[i]
            nbytes = out_of[i]
            if not (store_of[i] and nbytes > 0.0):
                done = xe
            elif not shared:
                done = xe + 0.0 * 1.0     # no latency
            else:
                if xe > now and queued(xe):
                    yield xe - now
                total = 0.0 + nbytes
                work = total * per_byte + total * out_per_byte
                if work > 0 and (staged := stage(work)) > now and queued(staged):
                    yield staged - now
                done = now
            tdec = done + 0.0             # (no coordination round trip)
            delay = tdec - now
            if queued(tdec if delay > 0.0 else now):
                yield delay if delay > 0.0 else 0.0
            downstream(i, w, tdec)
            free = tdec
        finished += len(tasks)

    def resume(me: list) -> None:
        try:
            wait = me[0].send(None)
        except StopIteration:
            return
        if wait is not None:
            heappush(queue, (now + wait, next(ids), me, None))

    def deliver(i: int, w: str, start: bool, t: float) -> None:
        arrival[i] = t
        nonlocal nested
        if start:   # its first steps run inside the caller's: they may not move the clock under it
            me: list = [None]
            me[0] = worker(w, t, me)
            outer, nested = nested, True
            resume(me)
            nested = outer
            return
        found = waiting.get(w)
        if found is not None and found[0] == i:
            del waiting[w]
            heappush(queue, (now + (t - now if t > now else 0.0), next(ids), found[1], None))

    def release(j: int, w: str, start: bool, t_ready: float, sender: str | None) -> None:
        t = t_ready + level_delay
        if dispatch:
            t = dispatch_serve(t, w)
        if w == sender:
            arrival[j] = t
            return
        t = t + 0.0                        # (no invoke_s)
        delay = t - now
        if delay > 0.0 and start:
            heappush(queue, (now + delay, next(ids), None, (j, w, t)))
        else:
            deliver(j, w, start, t)

    def downstream(i: int, w: str, tdec: float) -> None:
        """The compiled protocol's downstream step (:func:`simulator.worker_loop.downstream_step`), with
        :meth:`Run.release` and a notification's :meth:`Run.deliver` inline."""
        nonlocal end, dispatch_free
        kids = downstream_of[i]
        if not kids:   # client_fetch(): free storage, no latency
            t = tdec if sink_bytes[i] <= 0.0 else tdec + 0.0 * 1.0
            end = max(end, t)
            return
        invoked = None
        for kid in kids:
            j = kid[0]
            left = counter[j] - 1
            counter[j] = left
            if left == 0:
                if not kid[1]:
                    if invoked is None:
                        invoked = [kid]
                    else:
                        invoked.append(kid)
                elif dispatch:
                    arrival[j] = dispatch_serve(tdec + level_delay, w)
                else:
                    arrival[j] = tdec + level_delay
        if invoked is None:
            return
        for j, _, cw, cstart in invoked:
            t = tdec + level_delay
            if serial_only:
                t = dispatch_free = (t if t > dispatch_free else dispatch_free) + dispatch_s
            elif dispatch:
                t = dispatcher.serve(t, cw)
            if cw == w:
                arrival[j] = t
                continue
            t = t + 0.0                    # (no invoke_s)
            if cstart:
                delay = t - now
                if delay > 0.0:
                    heappush(queue, (now + delay, next(ids), None, (j, cw, t)))
                else:
                    deliver(j, cw, True, t)
                continue
            arrival[j] = t
            found = waiting.get(cw)
            if found is not None and found[0] == j:
                del waiting[cw]
                heappush(queue, (now + (t - now if t > now else 0.0), next(ids), found[1], None))

    start = platform.workflow_start_s
    index = run.model.index
    for inv in run.tables.initial:
        release(index[inv.task], inv.worker, inv.start, start, None)
    while queue:
        now, _, me, message = heappop(queue)
        if me is None:
            deliver(message[0], message[1], True, message[2])
            continue
        try:                                # (resume, inline)
            wait = me[0].send(None)
        except StopIteration:
            continue
        if wait is not None:
            heappush(queue, (now + wait, next(ids), me, None))
    return end if finished >= run.model.n else None
