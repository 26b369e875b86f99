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
shared link, and local names instead of attribute look-ups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator

from simulator.lifecycle import host_start, on_cpu, started, stopped
from simulator.loop import Coroutine
from simulator.transfers import client_fetch, move

if TYPE_CHECKING:  # pragma: no cover
    from simulator.engine import Run


def loop_constants(run: "Run") -> tuple:
    """What every worker loop of ``run`` binds to local names, gathered once per run (a run may start
    thousands of workers: one tuple unpacking each instead of dozens of attribute look-ups)."""
    platform, link = run.platform, run.link
    return (run.env, run.exec_s, run.exec_profile, run.record, run.arrival, run.counter, run.ready_at, run.fetch,
            run.fetch_sized, run.store, run.out_bytes, run.downstream, run.release, run.down.next, run.up.next,
            run.waiting, run.down, run.up, run.cpu, platform.storage_latency_s, run.shared, platform.task_overhead_s,
            platform.coordination_s, platform.level_delay_s, run.dispatcher.active, run.dispatcher, run.rows.append,
            link is not None and not run.stage_rate > 0 and run.cpu is None,   # shared storage is the link alone
            link.transfers if link is not None else None,
            run.down.values is None and run.up.values is None, run.live, run.live_downstream,
            run.parallelism)


def worker_loop(run: "Run", w: str, start: float, me: Coroutine) -> Iterator[float | None]:
    """Logical worker ``w``, started at ``start``: its tasks one at a time, then its stop."""
    (env, exec_s, profile_of, rec, arrival, counter, ready_at, fetch_of, fetch_sized, store_of, out_of, downstream_of,
     release, down_next, up_next, waiting, down_pool, up_pool, cpu, latency, shared, overhead, coord, level_delay,
     dispatch, dispatcher, rows_append, fast, transfers, deterministic, protocol, downstream_step,
     parallelism) = run.loop_constants
    if protocol is None:
        profile = run.tables.worker_profile[w]
        tasks = run.tables.sequence.get(w, ())
        ran = tasks
    else:
        state = run.states[w]
        profile = state.profile
        ran = []
        tasks = live_tasks(run, state, w, ran)
    if cpu is None:
        warm, startup = started(run, profile, start)
        free = start + startup
    else:
        warm, free = yield from host_start(run, profile, start, me)
        startup = free - start
    busy, count = 0.0, 0
    for i in tasks:
        a = arrival[i]
        if a is None:
            waiting[w] = (i, me)
            yield
            a = arrival[i]
        begin = a if a > free else free
        fetch = fetch_of[i]
        at_xe = False
        if fetch and shared:
            if begin > env._now:
                yield begin - env._now
            if fast:   # move()'s link path, inlined
                sizes, lats = fetch_sized[i], latency
                if not deterministic:
                    ratios = [down_next() for _ in sizes]
                    sizes = [nb * r for nb, r in zip(sizes, ratios)]
                    lats = [latency * r for r in ratios]
                if not sizes:
                    dend = env._now
                elif store_of[i] and out_of[i] > 0:
                    # an upload follows: the downloads' event resumes us when it may start, at
                    # xe = (max(downloads' end, begin) + overhead) + execution
                    transfers(sizes, lats, env._now, (begin, overhead, exec_s[i]), me)
                    dend = yield
                    at_xe = True
                else:
                    transfers(sizes, lats, env._now, None, me)
                    dend = yield
            elif store_of[i] and out_of[i] > 0 and cpu is None:
                # an upload follows: the downloads' event resumes us when it may start (at xe)
                dend, at_xe = yield from move(run, fetch, down_pool, me, (begin, overhead, exec_s[i]))
            else:
                dend, _ = yield from move(run, fetch, down_pool, me)
            if dend < begin:
                dend = begin
        elif fetch:
            download = 0.0   # free bandwidth: only latencies, in parallel
            for nb in fetch:
                if nb > 0:
                    d = latency * down_next()
                    if d > download:
                        download = d
            dend = begin + download
        else:
            dend = begin
        xs = dend + overhead
        if cpu is None:
            xe = xs + exec_s[i]
        else:
            if xs > env._now:
                yield xs - env._now
            xe = yield from on_cpu(run, exec_s[i], profile_of[i], parallelism[i], me)
        nbytes = out_of[i]
        at_tdec = False
        if store_of[i] and nbytes > 0:
            if shared:
                if not at_xe and xe > env._now:
                    yield xe - env._now
                if fast:   # move()'s link path, inlined (nbytes > 0)
                    r = 1.0 if deterministic else up_next()
                    transfers([nbytes * r], latency * r, env._now, coord, me)
                    done = yield
                    at_tdec = True
                else:
                    done, at_tdec = yield from move(run, [nbytes], up_pool, me, coord)
            else:
                done = xe + latency * up_next()
        else:
            done = xe
        if rec:   # (one short tuple per task: sequential memory, little to convert at the end)
            rows_append((i, begin, dend, xe, done))
        busy += done - begin
        count += 1
        # the output is stored; one round trip updates the children's counters
        tdec = done + coord
        if not at_tdec:   # (an upload through the link already resumed us at tdec)
            delay = tdec - env._now
            yield delay if delay > 0 else 0.0
        if protocol is not None:
            downstream_step(state, i, w, tdec)
        elif downstream_of[i]:
            ready = []
            for kid in downstream_of[i]:
                j = kid[0]
                counter[j] -= 1
                if counter[j] == 0:
                    ready.append(kid)
                    ready_at[j] = tdec
            # run_here first, then invocations (handle_downstream's order)
            for j, here, cw, cstart in ready:
                if here:
                    t = tdec + level_delay
                    if dispatch:
                        t = dispatcher.serve(t, w)
                    arrival[j] = t        # a continuation: this worker already queued it
            for j, here, cw, cstart in ready:
                if not here:
                    release(j, cw, cstart, tdec, w)
        else:
            client_fetch(run, i, tdec)
        free = tdec
    stopped(run, w, profile, warm, start, startup, free, busy, count, ran)


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
            sized_of[i] = [b for b in fetch if b > 0]
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
