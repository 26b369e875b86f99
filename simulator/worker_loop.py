"""The one interpreter of the worker protocol in simulated time: a logical worker's loop.

Per task: wait for its notification, fetch the inputs the protocol fetches (in
parallel), execute on the profile it chose, store the output when it stores it,
then - after the output is stored - one coordination round trip decrements the
children's counters and the downstream decision releases the ready ones.  The
decisions are looked up in the run's per-task lists: the protocol's compiled
:class:`~planning.protocol.DecisionTables` for a static protocol, or filled task by
task from the live hooks of a dynamic one (:func:`live_tasks`, :func:`live_downstream`).

Timestamps are carried exactly (``begin = max(arrival, free)``, ``end = begin +
duration``), the recurrence of :mod:`planning.schedule`, so with no overheads the
simulated times equal the plan's bit for bit; SimPy only orders the events.  This
loop is the simulator's hot path: one wake-up per task (at its counter update),
plus one for a notification it waits for and one per group of transfers through a
shared link, and local names instead of attribute look-ups.  An upload through the
link is started by the link's wake-up at the execution's end (:class:`UploadStart`),
not by the loop: the loop sleeps from its downloads to its counter update.  Times and
bytes are floats, compared with ``0.0``, not ``0``: CPython specializes a comparison
only when both sides have the same type, and a float against an int goes the slow,
generic way every time (the same answer either way).
"""

from __future__ import annotations

from heapq import heappush
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from simpy.events import NORMAL

from simulator.lifecycle import host_start, on_cpu, started, stopped
from simulator.loop import Coroutine
from simulator.transfers import client_fetch, move

if TYPE_CHECKING:  # pragma: no cover
    from simulator.engine import Run


def loop_constants(run: "Run") -> tuple:
    """What every worker loop of ``run`` binds to local names, gathered once per run (a run may start
    thousands of workers: one tuple unpacking each instead of dozens of attribute look-ups), with the
    per-run steps (:func:`link_steps`, :func:`downstream_step`) the loop calls."""
    platform = run.platform
    downloads, upload = link_steps(run)
    return (run.env, run.exec_s, run.record, run.arrival, run.fetch, run.store, run.out_bytes, run.waiting,
            run.down, run.up, run.down.next, run.up.next, run.cpu, platform.storage_latency_s, run.shared,
            platform.task_overhead_s, platform.coordination_s, run.rows.append, downloads, upload,
            run.live_downstream if run.live is not None else downstream_step(run))


def worker_loop(run: "Run", w: str, start: float, me: Coroutine) -> Iterator[float | None]:
    """Logical worker ``w``, started at ``start``: its tasks one at a time (notification, inputs, execution,
    output, children's counters), then its stop.  The hot path: arithmetic inline; a shared resource is a call
    that registers the wake-up the loop then waits for; the rare ways (stager, shared host) are sub-generators."""
    (env, exec_s, rec, arrival, fetch_of, store_of, out_of, waiting, down_pool, up_pool, down_next, up_next, cpu,
     latency, shared, overhead, coord, rows_append, downloads, upload, downstream) = run.loop_constants
    profile, tasks, ran, state = worker_tasks(run, w)
    if cpu is None:
        warm, startup, free = started(run, profile, start)
    else:
        warm, startup, free = yield from host_start(run, profile, start, me, w)
    busy = 0.0
    for i in tasks:
        if arrival[i] is None:   # not notified yet: Run.deliver wakes us when the message arrives
            waiting[w] = (i, me)
            yield
        a = arrival[i]
        begin = a if a > free else free
        at_xe = False            # (whether the downloads' wake-up came at the execution's end already)
        if not (fetch := fetch_of[i]):
            dend = begin
        elif not shared:         # free bandwidth: only latencies, in parallel
            dend = begin + parallel_latency(fetch, latency, down_next)
        else:
            if begin > env._now:
                yield begin - env._now
            if downloads is not None:
                how = downloads(i, begin, me)
                if how is None:      # nothing moved bytes: the downloads end now
                    dend = env._now
                elif how == AT_END:  # woken at the downloads' end
                    dend = yield
                else:                # woken at the counter update: the rest of the task is arithmetic
                    done = yield
                    dend = me.upload.value if how == UPLOADED else done   # (the downloads' end)
                    dend = begin if dend < begin else dend
                    xe = dend + overhead + exec_s[i]
                    if how == NOT_STORED:
                        done = xe
                    if rec:
                        rows_append((i, begin, dend, xe, done))
                    busy += done - begin
                    downstream(state, i, w, done + coord)
                    free = done + coord
                    continue
            else:
                dend, at_xe = yield from move(run, fetch, down_pool, me, upload_follows(run, i, begin))
            dend = begin if dend < begin else dend
        if cpu is None:
            xe = dend + overhead + exec_s[i]
        else:
            xe = yield from shared_execution(run, i, dend + overhead, me)
        nbytes = out_of[i]
        at_tdec = False          # (whether the upload's wake-up came at the counter update already)
        if not (store_of[i] and nbytes > 0.0):
            done = xe
        elif not shared:
            done = xe + latency * up_next()
        elif upload is not None:   # (at_xe is False here: the link's wake-ups handled the other cases above)
            at_tdec = upload(nbytes, xe, me)
            done = yield
        else:
            if not at_xe and xe > env._now:
                yield xe - env._now
            done, at_tdec = yield from move(run, [nbytes], up_pool, me, coord)
        if rec:                  # (one short tuple per task: sequential memory, little to convert at the end)
            rows_append((i, begin, dend, xe, done))
        busy += done - begin
        tdec = done + coord      # the output is stored; one round trip updates the children's counters
        if not at_tdec:
            delay = tdec - env._now
            yield delay if delay > 0.0 else 0.0
        downstream(state, i, w, tdec)
        free = tdec
    stopped(run, w, profile, warm, start, startup, free, busy, len(ran), ran)


def upload_follows(run: "Run", i: int, begin: float) -> tuple[float, float, float] | None:
    """When task ``i``'s output is stored next (and no shared host times its execution), its downloads' group
    wakes the worker at the execution's end, ``(max(end, begin) + overhead) + execution`` (saving its own wait)."""
    if run.store[i] and run.out_bytes[i] > 0.0 and run.cpu is None:
        return begin, run.platform.task_overhead_s, run.exec_s[i]
    return None


def worker_tasks(run: "Run", w: str) -> tuple[str, Iterable[int], list[int], Any]:
    """Worker ``w``'s profile, its tasks (in order), the list of those it ran, and its live state.

    A compiled protocol's worker runs its sequence (which is then also what it ran); a
    live one runs what the protocol says task by task (:func:`live_tasks`), collected
    into the list as it goes.
    """
    if run.live is None:
        tasks = run.tables.sequence.get(w, ())
        return run.tables.worker_profile[w], tasks, tasks, None
    state = run.states[w]
    ran: list[int] = []
    return state.profile, live_tasks(run, state, w, ran), ran, state


def parallel_latency(fetch: list[float], latency: float, ratio: Callable[[], float]) -> float:
    """Downloads with free bandwidth: in parallel, each its latency (times its ratio); the slowest counts."""
    download = 0.0
    for nb in fetch:
        if nb > 0.0:
            d = latency * ratio()
            if d > download:
                download = d
    return download


def shared_execution(run: "Run", i: int, xs: float, me: Coroutine) -> Iterator[float | None]:
    """Task ``i``'s execution from ``xs`` on a shared host's cores (:func:`on_cpu`); returns its end."""
    env = run.env
    if xs > env._now:
        yield xs - env._now
    return (yield from on_cpu(run, run.exec_s[i], run.exec_profile[i], run.parallelism[i], me))


#: how the link wakes a worker after its downloads (:func:`link_steps`): at their end; at the counter update after
#: the upload an UploadStart began at the execution's end; at the counter update of a task that stores nothing
AT_END, UPLOADED, NOT_STORED = 0, 1, 2


def link_steps(run: "Run") -> tuple[Callable[..., int | None] | None, Callable[[float, float, Coroutine], bool] | None]:
    """The worker loop's two ways onto the shared link, as calls that register a group of transfers: the
    downloads of task ``i`` and an upload; (None, None) when storage is not the link alone (the stager or a
    shared host is in the way: :func:`simulator.transfers.move` steps through them).

    ``downloads(i, begin, me)`` starts the task's fetches and returns how the loop is woken
    (:data:`AT_END`, :data:`UPLOADED`, :data:`NOT_STORED`), None when nothing moves bytes (no
    wake-up: the downloads end now).  ``upload(nbytes, xe, me)`` starts an upload at the execution's end ``xe`` (now, or
    through an :class:`UploadStart` queued at ``xe``); its wake-up comes at the counter update.
    """
    link = run.link
    if link is None or run.stage_rate > 0 or run.cpu is not None or not run.plain_transfers:
        return None, None
    transfers, transfer_one, env, latency = link.transfers, link.transfer_one, run.env, run.platform.storage_latency_s
    queue, ids = env._queue, env._eid
    sized_of, store_of, out_of, exec_s = run.fetch_sized, run.store, run.out_bytes, run.exec_s
    overhead, coord = run.platform.task_overhead_s, run.platform.coordination_s
    down_next, up_next = run.down.next, run.up.next
    deterministic = run.down.values is None and run.up.values is None

    def upload_start(me: Coroutine, nbytes: float) -> "UploadStart":
        """``me``'s :class:`UploadStart` (one per worker loop, made at its first use), set to upload ``nbytes``."""
        start = me.upload
        if start is None:
            start = me.upload = UploadStart(me, transfer_one, latency, coord, None if deterministic else up_next)
        start.nbytes = nbytes
        return start

    def downloads(i: int, begin: float, me: Coroutine) -> int | None:
        sizes = sized_of[i]
        if not sizes:
            return None
        # the execution ends at xe = (max(downloads' end, begin) + overhead) + execution: when an upload
        # follows, the link wakes its UploadStart then and the loop at the upload's counter update; when
        # none does, the link wakes the loop at the counter update xe + coord (with a zero coord, at the
        # downloads' end: the loop's own zero wait would be a queue entry of its own)
        if store_of[i] and (nbytes := out_of[i]) > 0.0:
            waiter = me.upload            # (upload_start, inlined: once per task)
            if waiter is None:
                waiter = me.upload = UploadStart(me, transfer_one, latency, coord, None if deterministic else up_next)
            waiter.nbytes = nbytes
            then, how = (begin, overhead, exec_s[i]), UPLOADED
        elif coord > 0.0:
            then, waiter, how = (begin, overhead, exec_s[i], coord), me, NOT_STORED
        else:
            then, waiter, how = None, me, AT_END
        if len(sizes) == 1:
            r = 1.0 if deterministic else down_next()
            transfer_one(sizes[0] * r, latency * r, then, waiter)
        elif deterministic:
            transfers(sizes, latency, env._now, then, waiter)
        else:
            ratios = [down_next() for _ in sizes]
            transfers([nb * r for nb, r in zip(sizes, ratios)], [latency * r for r in ratios], env._now, then,
                      waiter)
        return how

    def upload(nbytes: float, xe: float, me: Coroutine) -> bool:
        now = env._now
        if xe > now:          # its start at xe (UploadStart: the queue entry the loop's own wait would be)
            heappush(queue, (now + (xe - now), NORMAL, next(ids), upload_start(me, nbytes)))
            return True
        r = 1.0 if deterministic else up_next()
        transfer_one(nbytes * r, latency * r, coord, me)
        return True

    return downloads, upload


class UploadStart:
    """Starts a task's upload at its execution's end, in place of its worker's loop (one generator resume less
    per task): the link wakes it where it would have woken the loop (:func:`link_steps`' ``downloads``, the
    same queue entry, so the same order), it draws the upload's ratio and starts the transfer, whose
    completion wakes the loop at the counter update.  :attr:`value` keeps the downloads' end for the loop."""

    __slots__ = ("me", "transfer_one", "latency", "coord", "up_next", "nbytes", "value")

    def __init__(self, me: Coroutine, transfer_one: Callable, latency: float, coord: float,
                 up_next: Callable[[], float] | None) -> None:
        self.me, self.transfer_one, self.latency, self.coord, self.up_next = me, transfer_one, latency, coord, up_next
        self.nbytes = 0.0
        self.value = None

    def resume(self) -> None:
        r = 1.0 if self.up_next is None else self.up_next()
        self.transfer_one(self.nbytes * r, self.latency * r, self.coord, self.me)


def downstream_step(run: "Run") -> Callable[[Any, int, str, float], None]:
    """A compiled protocol's downstream step for ``run``: ``step(state, i, w, tdec)`` after task ``i`` done on ``w``.

    Decrements the children's counters and releases the ready ones as the tables say:
    the ones this worker runs (continuations, already queued) as they become ready, then
    the invocations - so a continuation passes the serial dispatcher before the invocations
    released with it (:meth:`handle_downstream`'s order); a sink's result goes to the client.
    """
    arrival, counter, ready_at, downstream_of, release = run.arrival, run.counter, run.ready_at, run.downstream, \
        run.release
    level_delay, dispatcher = run.platform.level_delay_s, run.dispatcher
    dispatch = dispatcher.active

    def step(state: Any, i: int, w: str, tdec: float) -> None:
        kids = downstream_of[i]
        if not kids:
            client_fetch(run, i, tdec)
            return
        invoked = None
        for kid in kids:
            j = kid[0]
            left = counter[j] - 1
            counter[j] = left
            if left == 0:
                ready_at[j] = tdec
                if not kid[1]:
                    if invoked is None:
                        invoked = [kid]
                    else:
                        invoked.append(kid)
                elif dispatch:    # a continuation (this worker already queued it), after the serial dispatcher
                    arrival[j] = dispatcher.serve(tdec + level_delay, w)
                else:
                    arrival[j] = tdec + level_delay
        if invoked is not None:
            for j, here, cw, cstart in invoked:
                release(j, cw, cstart, tdec, w)

    return step


def live_tasks(run: "Run", state, w: str, ran: list[int]) -> Iterator[int]:
    """A live protocol's tasks for worker ``w``, each with its decisions filled into the run's per-task lists.

    The worker runs what :meth:`next_task` says; before each task its inputs (given
    what this worker ran), execution profile and output decisions are asked and
    written where the loop reads a compiled protocol's tables.
    """
    protocol, model = run.live, run.model
    index, ids, planned = model.index, model.ids, model.planned_profile
    handle_inputs, handle_execution, handle_output = protocol.handle_inputs, protocol.handle_execution, \
        protocol.handle_output
    fetch_of, sized_of, store_of, out_of, profile_of = run.fetch, run.fetch_sized, run.store, run.out_bytes, \
        run.exec_profile
    sized = run.link is not None        # (only the shared link's inlined path reads the fetches that move bytes)
    ran_ids: set[str] = set()
    while True:
        task = protocol.next_task(state)
        if task is None:
            return
        i = index[task]
        fetch = [f.nbytes for f in handle_inputs(task, w, ran_ids).fetch]
        fetch_of[i] = fetch
        if sized:
            sized_of[i] = [b for b in fetch if b > 0.0]
        used = handle_execution(task, w).profile
        profile_of[i] = used
        if used != planned[i]:
            run.exec_s[i] = model.exec_on(i, used, None if run.exec_ratio is None else run.exec_ratio[i])
        out = handle_output(task, w)
        store_of[i], out_of[i] = out.store, out.nbytes
        yield i
        protocol.task_done(state, task)
        ran_ids.add(task)
        ran.append(i)


def live_downstream(run: "Run") -> Callable[[Any, int, str, float], None]:
    """A live protocol's downstream step for ``run``: ``step(state, i, w, tdec)`` after task ``i`` done on ``w``.

    Decrements the children's counters, asks :meth:`handle_downstream` about the
    ready ones and releases what it says (a sink's result goes to the client).  A
    closure over the run's lists: it runs once per task.
    """
    protocol, model = run.live, run.model
    index, ids, children_ids = model.index, model.ids, model.children_ids
    counter, ready_at, release = run.counter, run.ready_at, run.release
    handle_downstream, after_downstream = protocol.handle_downstream, protocol.after_downstream

    def step(state: Any, i: int, w: str, tdec: float) -> None:
        kids = children_ids[i]
        ready = []
        if kids:
            for c in kids:
                j = index[c]
                counter[j] -= 1
                if counter[j] == 0:
                    ready.append(c)
                    ready_at[j] = tdec
        else:
            client_fetch(run, i, tdec)
        decision = handle_downstream(ids[i], w, ready)
        after_downstream(state, decision)
        for c in decision.run_here:
            release(index[c], w, False, tdec, w)
        for inv in decision.invocations:
            release(index[inv.task], inv.worker, inv.start, tdec, w)

    return step
