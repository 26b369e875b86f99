"""A replay's makespan alone, without the general loop: what a calibration's candidate fit needs.

Why a third loop beside :mod:`simulator.worker_loop` (the general interpreter) and
:mod:`simulator.fast_loop` (the default platform's hot path): ``planlab calibrate``
simulates every training execution at every point its fit tries - epigenomics' command
about 2,000 replays, four fifths of its CPU in the general loop - and asks only for the
makespan.  A replay of a real execution (:func:`simulator.simulate.compile_plan` of a
``recorded`` plan) on a workflow-system platform has free, latency-free storage and no
executor overheads; what it has is the serial stager and the serial dispatcher, which
:mod:`simulator.fast_loop` does not take.  Here that case is one closure per run: the
stager's and dispatcher's arithmetic inline, no per-task rows, no worker records, no
sub-generators.

What no platform changes is read once per compiled model (:class:`ReplayProgram`: each
task's execution seconds, decisions and staged bytes, the roots' invocations), so a
replay at another point builds nothing but its two per-task lists - not the general
loop's :class:`~simulator.engine.Run` (a SimPy environment, ratio pools, the per-run
steps).  Measured on epigenomics' command in one process (1,983 replays, 620 tasks each on
average): 6.33 -> 6.15 s in the replays (load 4-5), a small share - the event loop itself,
about 5 us per task, is the cost.

It is the general loop's arithmetic in the general loop's order: every wake-up the
general loop queues is queued here in the same sequence (time, then order of queueing,
as SimPy's ``(time, priority, id)`` entries with one priority), the same floating-point
expressions are evaluated (a zero latency or overhead is still added), and the stager
and dispatcher are served in the same order - so the makespan is the general loop's bit
for bit.  ``tests/test_makespan_replay.py`` compares the two on the shipped executions at
several platforms; :func:`applies_to` says which runs this path takes (any other is run by
:func:`simulator.simulate.run_once`).
"""

from __future__ import annotations

import math
import weakref
from heapq import heappop, heappush
from typing import Any, Iterator

from simulator.dispatch import dispatcher_for
from simulator.engine import Run
from simulator.model import CompiledModel
from simulator.platform import Platform
from simulator.simulate import run_once
from simulator.staging import Stager, staged_bytes


class ReplayProgram:
    """What every replay of one compiled model reads and no platform changes (see the module docstring)."""

    __slots__ = ("n", "tables", "exec_s", "store", "out_bytes", "downstream", "sequence", "sink_bytes",
                 "indegree", "fetch_total", "fetch_external", "initial", "__weakref__")

    def __init__(self, run: Run) -> None:
        model, tables = run.model, run.tables
        self.n = model.n
        self.tables = tables
        #: execution seconds per task as the general loop times them without a shared host (no thread rule)
        self.exec_s: list[float] = list(run.exec_s)
        self.store, self.out_bytes, self.downstream = tables.store, tables.out_bytes, tables.downstream
        self.sequence, self.sink_bytes = tables.sequence, model.sink_bytes
        self.indegree: list[int] = list(model.indegree)
        #: per task, the bytes its fetches put through the stager and the external part of them, summed in the
        #: order :meth:`simulator.staging.Stager.seconds` sums them (None where the task has no fetch list)
        self.fetch_total: list[float | None] = []
        self.fetch_external: list[float | None] = []
        for sizes in run.fetch:
            total, external = staged_bytes(sizes) if sizes else (None, None)
            self.fetch_total.append(total)
            self.fetch_external.append(external)
        index = model.index
        #: the roots' invocations: (task, worker, whether it starts the worker)
        self.initial: list[tuple[int, str, bool]] = [(index[inv.task], inv.worker, inv.start)
                                                      for inv in tables.initial]


#: per compiled model, its program (None: a model this path never takes - a dynamic or overlapping protocol,
#: pre-warmed workers)
_PROGRAMS: "weakref.WeakKeyDictionary[CompiledModel, ReplayProgram | None]" = weakref.WeakKeyDictionary()


def applies(run: Run) -> bool:
    """Whether ``run`` is a case this path is written for: compiled decisions, no shared host, cluster or
    overlapping transfers, free storage (no link) with no latency, no executor overheads or start-ups, no
    pre-warmed workers, deterministic.  The stager, the dispatchers and the level delay may be anything."""
    return (_model_applies(run) and run.cpu is None and run.nodes is None and run.link is None
            and run.down.values is None and run.up.values is None and run.cold.values is None
            and run.warm.values is None and platform_applies(run.platform))


def _model_applies(run: Run) -> bool:
    """:func:`applies`' conditions on the compiled model alone (the same for every platform)."""
    return (run.tables is not None and run.live is None and run.overlap is None
            and not run.tables.warm_starts)


def platform_applies(p: Platform) -> bool:
    """:func:`applies`' conditions on the platform alone: what makes a deterministic run's ``cpu``, ``nodes`` and
    ``link`` None (:class:`~simulator.engine.Run`), no latency, overheads or start-ups."""
    return (not p.nodes and not p.shared_host and not math.isfinite(p.storage_bandwidth_Bps)
            and p.storage_latency_s == 0.0 and p.task_overhead_s == 0.0 and p.coordination_s == 0.0
            and p.invoke_s == 0.0 and p.cold_start_s == 0.0 and p.warm_start_s == 0.0)


def program(model: CompiledModel) -> ReplayProgram | None:
    """The model's :class:`ReplayProgram`, built once (from a run on :meth:`Platform.zero`, which this path
    takes), or None when no platform lets this path replay it."""
    try:
        return _PROGRAMS[model]
    except KeyError:
        pass
    run = Run(model, Platform.zero(), None, record=False)
    found = _PROGRAMS[model] = ReplayProgram(run) if _model_applies(run) else None
    return found


def applies_to(model: CompiledModel, platform: Platform) -> bool:
    """:func:`applies` of a deterministic run of ``model`` on ``platform``, without building the run."""
    return platform_applies(platform) and program(model) is not None


def makespan(model: CompiledModel, platform: Platform) -> float:
    """The makespan of one deterministic run of ``model`` on ``platform``: :func:`run_once`'s, computed by
    :func:`replay_makespan` when :func:`applies_to`, else by :func:`run_once` itself."""
    found = program(model) if platform_applies(platform) else None
    if found is None:
        return run_once(model, platform, record=False).makespan_s
    done = replay_makespan(found, platform)
    # a stalled plan: the general loop names the task that never ran
    return done if done is not None else run_once(model, platform, record=False).makespan_s


def replay_makespan(program: ReplayProgram, platform: Platform) -> float | None:
    """Replay ``program`` on ``platform`` (for which :func:`platform_applies`) to its end; its makespan, or None
    if some task never ran."""
    exec_s, store_of, out_of, downstream_of = program.exec_s, program.store, program.out_bytes, program.downstream
    sequence, sink_bytes = program.sequence, program.sink_bytes
    fetch_total, fetch_external = program.fetch_total, program.fetch_external
    arrival: list[Any] = [None] * program.n
    counter = program.indegree.copy()
    stager = Stager(platform)
    per_byte, in_per_byte, out_per_byte = stager.per_byte, stager.in_per_byte, stager.out_per_byte
    # transfers step through the stager exactly when it charges (no link, no shared host: Run.shared)
    shared = stager.highest_per_byte > 0
    level_delay, dispatcher = platform.level_delay_s, dispatcher_for(platform, program.tables)
    dispatch = dispatcher.active
    # the one serial dispatcher alone (no machine starters): its FifoServer inline
    serial_only = dispatcher.machine_dispatch_s == 0.0 and dispatcher.dispatch_s > 0.0
    dispatch_s = dispatcher.dispatch_s
    dispatch_free = 0.0

    waiting: dict[str, tuple[int, list]] = {}
    queue: list = []
    seq = 0                 # the queue entries' order of queueing (SimPy's event id)
    now = 0.0
    stage_free = 0.0        # the stager's FifoServer
    finished = 0
    end = 0.0
    nested = False          # whether a worker runs inside another's step (spawned by its release)

    def worker(w: str, start: float, me: list) -> Iterator[float | None]:
        """:func:`simulator.worker_loop.worker_loop` for this case (see the module docstring).  Yields the
        absolute time of its next wake-up, or None to wait for a notification.  A wait whose wake-up would be
        the next entry out of the queue (strictly earlier than every queued one, so popped before anything
        else is queued) advances the clock here instead of queueing: the same order.  Not while it runs inside
        another worker's step (``nested``): that one goes on at the current time.  A wake-up at ``target`` is
        at ``now + (target - now)``, the queue entry's own arithmetic."""
        nonlocal finished, now, stage_free
        tasks = sequence.get(w, ())
        free = start + 0.0 * 1.0          # started(): a cold start of cold_start_s (0) times its ratio
        for i in tasks:
            a = arrival[i]
            if a is None:
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
                if begin > now:
                    t = now + (begin - now)
                    if nested or (queue and queue[0][0] <= t):
                        yield t
                    else:
                        now = t
                # move(): the stager, then no link
                work = total * per_byte + fetch_external[i] * in_per_byte
                if work > 0:
                    staged = stage_free = (now if now > stage_free else stage_free) + work
                    if staged > now:
                        t = now + (staged - now)
                        if nested or (queue and queue[0][0] <= t):
                            yield t
                        else:
                            now = t
                dend = now
                dend = begin if dend < begin else dend
            xe = dend + 0.0 + exec_s[i]
            nbytes = out_of[i]
            if not (store_of[i] and nbytes > 0.0):
                done = xe
            elif not shared:
                done = xe + 0.0 * 1.0     # no latency
            else:
                if xe > now:
                    t = now + (xe - now)
                    if nested or (queue and queue[0][0] <= t):
                        yield t
                    else:
                        now = t
                total = 0.0 + nbytes
                work = total * per_byte + total * out_per_byte
                if work > 0:
                    staged = stage_free = (now if now > stage_free else stage_free) + work
                    if staged > now:
                        t = now + (staged - now)
                        if nested or (queue and queue[0][0] <= t):
                            yield t
                        else:
                            now = t
                done = now
            tdec = done + 0.0             # (no coordination round trip)
            delay = tdec - now
            t = now + delay if delay > 0.0 else now + 0.0
            if nested or (queue and queue[0][0] <= t):
                yield t
            else:
                now = t
            downstream(i, w, tdec)
            free = tdec
        finished += len(tasks)

    def deliver(i: int, w: str, t: float) -> None:
        """A start message: the worker's first steps run inside the caller's, so they may not move its clock."""
        nonlocal nested, seq
        arrival[i] = t
        me: list = [None]
        gen = me[0] = worker(w, t, me)
        outer, nested = nested, True
        try:
            wake = gen.send(None)
        except StopIteration:
            wake = None
        nested = outer
        if wake is not None:
            heappush(queue, (wake, seq, me, None))
            seq += 1

    def notify(j: int, w: str, t: float) -> None:
        """A notification for a worker already running: recorded, and a worker waiting for it woken."""
        nonlocal seq
        arrival[j] = t
        found = waiting.get(w)
        if found is not None and found[0] == j:
            del waiting[w]
            heappush(queue, (now + (t - now if t > now else 0.0), seq, found[1], None))
            seq += 1

    def downstream(i: int, w: str, tdec: float) -> None:
        """The compiled protocol's downstream step (:func:`simulator.worker_loop.downstream_step`), with
        :meth:`Run.release` and a notification's :meth:`Run.deliver` inline."""
        nonlocal end, dispatch_free, seq
        kids = downstream_of[i]
        if not kids:   # client_fetch(): free storage, no latency
            t = tdec if sink_bytes[i] <= 0.0 else tdec + 0.0 * 1.0
            if t > end:
                end = t
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
                elif serial_only:
                    t = tdec + level_delay
                    arrival[j] = dispatch_free = (t if t > dispatch_free else dispatch_free) + dispatch_s
                elif dispatch:
                    arrival[j] = dispatcher.serve(tdec + level_delay, w)
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
                    heappush(queue, (now + delay, seq, None, (j, cw, t)))
                    seq += 1
                else:
                    deliver(j, cw, t)
                continue
            notify(j, cw, t)

    start = platform.workflow_start_s
    for j, w, starts in program.initial:   # Run.release of each root, at the run's start
        t = start + level_delay
        if serial_only:
            t = dispatch_free = (t if t > dispatch_free else dispatch_free) + dispatch_s
        elif dispatch:
            t = dispatcher.serve(t, w)
        t = t + 0.0                        # (no invoke_s)
        delay = t - now
        if delay > 0.0 and starts:
            heappush(queue, (now + delay, seq, None, (j, w, t)))
            seq += 1
        elif starts:
            deliver(j, w, t)
        else:
            notify(j, w, t)
    while queue:
        now, _, me, message = heappop(queue)
        if me is None:
            deliver(message[0], message[1], message[2])
            continue
        try:                                # (resume, inline)
            wake = me[0].send(None)
        except StopIteration:
            continue
        if wake is not None:
            heappush(queue, (wake, seq, me, None))
            seq += 1
    return end if finished >= program.n else None
