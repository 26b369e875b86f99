"""The default platform's hot path: one specialised worker loop and event loop for the common case.

Why a second loop beside :func:`simulator.worker_loop.worker_loop` (the one
interpreter of the protocol, which stays the general path and the model users
extend): on the default platform - a compiled (static) protocol, storage bandwidth
shared by a :class:`~simulator.storage.SharedLink`, no host model, no stager, no
serial dispatcher, no sampled draws, no transfers overlapping executions - about
forty Python calls are made per task, most of them to steps the general loop
reaches through parameters it needs for the other platforms (the downloads' and
upload's link steps, the downstream step, the release and delivery of messages,
the upload starter's own resume).  Here they are written inline in one generator
per worker (:func:`fast_steps`' ``worker``) and the event loop (:func:`run`)
resumes the upload starters and start messages itself; the shared link's hot
operations (the wake-ups at ``due``, back to back, with the next prediction, a single transfer's
start, a group of downloads' start) are written out where they are used, on the
link's own state, its constants in local names.  A task costs about a dozen Python
calls fewer (issue 18: the whole ``simulate()`` call at >= 100k tasks/s at 10k
tasks).  The :class:`SharedLink` object stays: the general code still reached from
here (a sink's fetch by the client, the link's rarer paths, a message's delivery)
and the users' extensions meet the same state.

Its events wait in a *calendar* instead of SimPy's heap (:func:`run`): two lists kept
sorted, the times negated (``keys``) and the items (``items``), the next event last.
The heap's entries ``(time, NORMAL, id, item)`` compare as tuples (an equality and an
order test of the times per comparison, about seven comparisons per pop); the
calendar bisects plain floats and pops from the end - the queue's work per event
was an eighth of a run.  Its order is the heap's: by time, ties in the order they
were queued (every entry has NORMAL priority, so SimPy's ids are that order: a new
entry goes before the equal keys, which are popped first).  What the general code
queues in SimPy's queue (``link.wake``'s wake-ups, a spawned worker's first wait, a
message's delivery) is moved into the calendar right after the call (:func:`_drain`).

It is the general path's arithmetic in the general path's order: the same events,
queued in the same sequence and popped in the same order, with the same
floating-point expressions (a time is stored negated, which is exact), and the same
:class:`SharedLink` - so its results are the general path's bit for bit.  Two steps
are shortened where the difference cannot show.  The downstream step counts a
child's parents down and sends its invocation in one pass over the children (the
general step counts every child down first): an invocation queues a message, wakes
or spawns *another* worker - which reads only its own tasks' arrivals and yields
before it counts anything down - and the continuations' arrivals it would have
set first belong to this worker, so the same entries are queued in the same order.
And the link's wake-up takes a group's value at its last transfer only (the general
wake-up keeps the running maximum of every transfer's end): on this path every
transfer of a group has the one storage latency and the transfers complete in mark
order at non-decreasing times, so the last one's end is that maximum (or the value
the general code recorded, which the maximum reads).
``tests/test_simulator_fast.py`` runs both paths on a set of workflows and platforms
and compares every column, so the two cannot drift apart: a change to the worker
protocol's interpretation in :mod:`simulator.worker_loop` must be made here too (or
:func:`applies` narrowed), or that test fails.

The install compiles this module, unchanged, with Cython (``setup.py``; :mod:`simulator.compiled`
says why and when the compiled twin runs): keep it plain Python that Cython translates (for one, Cython
refuses to unpack a starred display such as ``a, b, c = x, *pair``); the same test compares the twin with this module.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from heapq import heappop
from typing import TYPE_CHECKING, Any, Callable, Iterator

from simpy.events import Event

from simulator.storage import Latest, SharedLink, _fire
from simulator.loop import Coroutine, spawn

if TYPE_CHECKING:  # pragma: no cover
    from simulator.engine import Run


def applies(run: "Run") -> bool:
    """Whether ``run`` is the case this path is written for (else the general loop runs it).

    A compiled protocol (no live hooks) with no transfers overlapping executions; a shared
    storage link and nothing else in the transfers' way (no stager, no shared host, no
    cluster); no serial dispatcher; deterministic (no sampled ratios).  (Its workers append
    their per-task rows whether the run records them or not: a short tuple each, read only
    when it does.)
    """
    return (run.tables is not None and run.overlap is None and run.cpu is None and run.link is not None
            and not run.stage_rate > 0 and not run.dispatcher.active
            and run.down.values is None and run.up.values is None and run.cold.values is None
            and run.warm.values is None)


class _Upload:
    """A task's upload starting at its execution's end, queued where the link wakes it (the general path's
    :class:`simulator.worker_loop.UploadStart`, resumed inline by :func:`run`); :attr:`value` keeps the
    downloads' end for the worker."""

    __slots__ = ("me", "nbytes", "value")

    def __init__(self, me: Coroutine) -> None:
        self.me = me
        self.nbytes = 0.0
        self.value = None


def fast_steps(run: "Run") -> Callable[..., Iterator[float | None]]:
    """The worker loop for ``run`` (:func:`applies`): ``worker(run, w, start, me)``, the general loop's signature.

    Per task, as :func:`simulator.worker_loop.worker_loop` with the link steps
    (``link_steps``), the downstream step (``downstream_step``) and the messages
    (``Run.release``, ``Run.deliver``), a worker's start-up (``lifecycle.started`` with
    ``take_warm``'s keep-alive rule), its stop (``lifecycle.stopped`` on one host) and a sink's
    fetch by the client (``transfers.client_fetch``) inline.  A start message in flight is a
    plain ``(task, worker, at)`` tuple in the queue, which :func:`run` delivers and whose
    worker it spawns itself (``loop.spawn`` inlined); one delivered at once is the general
    path's ``spawn`` (rare).
    """
    env, link, platform, tables = run.env, run.link, run.platform, run.tables
    queue = env._queue
    keys, items = run.calendar = [], []     # (the fast path's event calendar: :func:`run`)
    transfer_one = link.transfer_one
    active, marks, bandwidth, shared = link._active, link._marks, link.bandwidth, link.shared_bandwidth
    exec_s, arrival, counter, ready_at, waiting = run.exec_s, run.arrival, run.counter, run.ready_at, run.waiting
    fetch_of, sized_of, store_of, out_of, downstream_of = run.fetch, run.fetch_sized, run.store, run.out_bytes, \
        run.downstream
    sequence, worker_profile = tables.sequence, tables.worker_profile
    latency, overhead, coord = platform.storage_latency_s, platform.task_overhead_s, platform.coordination_s
    level_delay, invoke = platform.level_delay_s, platform.invoke_s
    rows_extend = run.flat_rows.extend     # (one flat list: read as a (tasks, 5) array, simulator.columns)
    idle, warm_start, cold_start = run.idle, platform.warm_start_s * 1.0, platform.cold_start_s * 1.0  # (ratio 1.0)
    sink_bytes, held = run.model.sink_bytes, run.held
    keep_alive, from_pool = platform.keep_alive_s, run.from_pool
    worker_rows_append, ran_by_append = run.worker_rows.append, run.ran_by.append

    def worker(_run: Any, w: str, start: float, me: Coroutine) -> Iterator[float | None]:
        profile = worker_profile[w]
        tasks = sequence.get(w, ())
        # (lifecycle.started, deterministic, with take_warm's pool rule - planning.schedule.startups.take_idle)
        stack = idle.get(profile)
        warm, startup = False, cold_start
        if stack:
            stopped_at = stack[-1]
            if start - stopped_at < keep_alive and stopped_at <= start:   # the latest idle process, still warm
                stack.pop()
                warm, startup = True, warm_start
            elif start - stopped_at >= keep_alive:                       # it, and every older one, gone cold
                stack.clear()
                from_pool.pop(profile, None)
        free = start + startup
        busy = 0.0
        up = me.upload = _Upload(me)     # (made at once: almost every worker stores an output)
        for i in tasks:
            if arrival[i] is None:       # not notified yet: the notification wakes us
                waiting[w] = (i, me)
                yield
            a = arrival[i]
            begin = a if a > free else free
            if not fetch_of[i]:
                dend = begin
            else:
                if begin > env._now:
                    yield begin - env._now
                sizes = sized_of[i]
                if not sizes:            # nothing moves bytes: the downloads end now
                    dend = env._now
                    dend = begin if dend < begin else dend
                else:
                    # (link_steps' downloads: who the link wakes, and when)
                    if store_of[i] and (nbytes := out_of[i]) > 0.0:
                        up.nbytes = nbytes
                        then, waiter, how = (begin, overhead, exec_s[i]), up, 1
                    elif coord > 0.0:
                        then, waiter, how = (begin, overhead, exec_s[i], coord), me, 2
                    else:
                        then, waiter, how = None, me, 0
                    # (SharedLink.transfers, written out for one latency and a waiter: _catch_up, the inserts,
                    # and _plan_wake)
                    now = env._now
                    group = [now, waiter, then]
                    t, h, served = link._updated, link._head, link._served
                    if now != t:
                        if link._first - now > 1e-12 * (now if now > 1.0 else 1.0):   # nothing completes by now
                            if now > t:
                                left = len(active) - h
                                if left:
                                    link._served = served = served + (now - t) * (
                                        bandwidth if left < 2 else shared) / left
                                link._updated = t = now
                        else:            # (transfers complete by now: SharedLink.wake, cheaper when no group ends)
                            if not _complete_by(link, now):
                                link.wake(now)
                                if queue:
                                    _drain(queue, keys, items)
                            t, h, served = link._updated, link._head, link._served
                    if len(sizes) == 1:     # (most downloads)
                        mark = served + sizes[0]
                        k = bisect_right(marks, mark, h)
                        marks.insert(k, mark)
                        active.insert(k, (mark, group, latency, True))
                    else:
                        last = 0            # the group's largest transfer finishes last (ties: the latest)
                        for k in range(1, len(sizes)):
                            if sizes[k] >= sizes[last]:
                                last = k
                        for k, nb in enumerate(sizes):
                            mark = served + nb
                            at = bisect_right(marks, mark, h)
                            marks.insert(at, mark)
                            active.insert(at, (mark, group, latency, k == last))
                    # (SharedLink._plan_wake, on the state in hand: the earliest transfer's completion, then,
                    # when its group has more, a walk to the group's last)
                    mark, _, _, last = active[h]
                    left = len(active) - h
                    t += (mark - served) * left / (bandwidth if left < 2 else shared)
                    link._first = t
                    if not last:
                        was, rest = mark, left - 1
                        for k in range(h + 1, len(active)):
                            mark, _, _, last = active[k]
                            t += (mark - was) * rest / (bandwidth if rest < 2 else shared)
                            was = mark
                            rest -= 1
                            if last:
                                break
                    link.due = t if t > now else now
                    if how:              # woken at the counter update: the rest of the task is arithmetic
                        done = yield
                        dend = up.value if how == 1 else done
                        dend = begin if dend < begin else dend
                        xe = dend + overhead + exec_s[i]
                        if how == 2:
                            done = xe
                        rows_extend((i, begin, dend, xe, done))
                        busy += done - begin
                        free = tdec = done + coord
                        # (downstream, below, duplicated: a generator cannot share it through a call for free)
                        kids = downstream_of[i]
                        if not kids:
                            if (nb := sink_bytes[i]) <= 0.0:   # (transfers.client_fetch)
                                if tdec > run.makespan:
                                    run.makespan = tdec
                            else:
                                transfer_one(nb, latency, None, held)
                                if queue:
                                    _drain(queue, keys, items)
                            continue
                        for kid in kids:         # (counted down and invoked in one pass: the module's docstring)
                            j = kid[0]
                            left = counter[j] - 1
                            counter[j] = left
                            if left == 0:
                                ready_at[j] = tdec
                                t = tdec + level_delay
                                _, here, cw, cstart = kid
                                if here or cw == w:  # a continuation: this worker already queued it (Run.release)
                                    arrival[j] = t
                                    continue
                                t = t + invoke
                                now = env._now
                                delay = t - now
                                if delay > 0.0 and cstart:   # a start message in flight (run spawns)
                                    nt = -(now + delay)
                                    k = bisect_left(keys, nt)
                                    keys.insert(k, nt)
                                    items.insert(k, (j, cw, t))
                                    continue
                                arrival[j] = t       # (Run.deliver)
                                if cstart:
                                    spawn(env, run.worker_loop, run, cw, t)   # (not the closure by name: a cycle)
                                    _drain(queue, keys, items)
                                    continue
                                wait = waiting.get(cw)
                                if wait is not None and wait[0] == j:
                                    del waiting[cw]
                                    nt = -(now + (t - now if t > now else 0.0))   # (its wait ignores the value it is sent)
                                    k = bisect_left(keys, nt)
                                    keys.insert(k, nt)
                                    items.insert(k, wait[1])
                        continue
                    dend = yield         # woken at the downloads' end
                    dend = begin if dend < begin else dend
            xe = dend + overhead + exec_s[i]
            nbytes = out_of[i]
            if not (store_of[i] and nbytes > 0.0):
                done = xe
                rows_extend((i, begin, dend, xe, done))
                busy += done - begin
                tdec = done + coord
                delay = tdec - env._now
                yield delay if delay > 0.0 else 0.0
            else:
                now = env._now
                if xe > now:             # its start at xe (the upload starter's queue entry)
                    up.nbytes = nbytes
                    nt = -(now + (xe - now))
                    k = bisect_left(keys, nt)
                    keys.insert(k, nt)
                    items.insert(k, up)
                else:
                    transfer_one(nbytes, latency, coord, me)
                    if queue:
                        _drain(queue, keys, items)
                done = yield
                rows_extend((i, begin, dend, xe, done))
                busy += done - begin
                tdec = done + coord
            free = tdec
            # the downstream step: children's counters, then the invocations' messages (as the tables say)
            kids = downstream_of[i]
            if not kids:
                if (nb := sink_bytes[i]) <= 0.0:   # the client fetches a sink's result (transfers.client_fetch)
                    if tdec > run.makespan:
                        run.makespan = tdec
                else:
                    transfer_one(nb, latency, None, held)
                    if queue:
                        _drain(queue, keys, items)
                continue
            for kid in kids:         # (counted down and invoked in one pass: the module's docstring)
                j = kid[0]
                left = counter[j] - 1
                counter[j] = left
                if left == 0:
                    ready_at[j] = tdec
                    t = tdec + level_delay
                    _, here, cw, cstart = kid
                    if here or cw == w:  # a continuation: this worker already queued it (Run.release)
                        arrival[j] = t
                        continue
                    t = t + invoke
                    now = env._now
                    delay = t - now
                    if delay > 0.0 and cstart:   # a start message in flight (run spawns)
                        nt = -(now + delay)
                        k = bisect_left(keys, nt)
                        keys.insert(k, nt)
                        items.insert(k, (j, cw, t))
                        continue
                    arrival[j] = t       # (Run.deliver)
                    if cstart:
                        spawn(env, run.worker_loop, run, cw, t)   # (not the closure by name: a cycle)
                        _drain(queue, keys, items)
                        continue
                    wait = waiting.get(cw)
                    if wait is not None and wait[0] == j:
                        del waiting[cw]
                        nt = -(now + (t - now if t > now else 0.0))   # (its wait ignores the value it is sent)
                        k = bisect_left(keys, nt)
                        keys.insert(k, nt)
                        items.insert(k, wait[1])
        # (lifecycle.stopped, on one host: its row, its run order, its process idle from ``free``)
        run.completed += len(tasks)
        worker_rows_append((w, profile, not warm, start, start + startup, free, busy, len(tasks), startup))
        ran_by_append(tasks)
        stack = idle.get(profile)
        if stack is None:
            idle[profile] = [free]
        else:
            stack.append(free)

    return worker


def run(run_: "Run") -> None:
    """Process ``run_``'s events until nothing is left: :func:`simulator.loop.run` on the fast path's calendar
    (``run_.calendar``: the times negated, sorted, and the items; the next event last - see the module's
    docstring), with the upload starters and start messages resumed inline, and the link's wake-up
    (:meth:`SharedLink.wake` at ``due``) written out here - the same arithmetic on the link's own state, with
    its constants in local names.

    Wake-ups come back to back: when the next group completes before the calendar's next entry (four in ten
    wake-ups on the 10k-task benchmark), the loop would come straight back to the link, so the wake-up goes on
    to it at once, the link's state kept in locals and written back when it stops - the same wake-ups in the
    same order, one pass round the loop instead of several.  The earliest transfer's predicted completion is
    the time its completion check broke on (the same expression on the same operands) unless the clock had to
    be brought forward to ``due`` first.  So when that transfer ends its group (no walk) and the clock did not
    move, the next wake-up is at that very time: the check goes on there at once (``now`` becomes it), without
    the prediction's bookkeeping and the same check computed again - the general wake-up's arithmetic still."""
    env, link, worker, arrival = run_.env, run_.link, run_.worker_loop, run_.arrival
    queue = env._queue
    keys, items = run_.calendar     # (two statements: Cython compiles no starred assignment)
    latency, coord = run_.platform.storage_latency_s, run_.platform.coordination_s
    active, marks, bandwidth, shared = link._active, link._marks, link.bandwidth, link.shared_bandwidth
    inf, new = float("inf"), object.__new__
    _drain(queue, keys, items)   # (the roots' messages and pre-warmed starts, queued before the run)
    while True:
        due = link.due
        if not keys or due <= -keys[-1]:   # the link's wake-up comes first (ties: the link, as SimPy's loop)
            if due == inf:
                return
            # -- the link's wake-ups: SharedLink.wake(None) at ``due``, inlined, and again at each next ``due`` that
            # comes before the calendar's next entry (where the loop would come straight back), its state in locals
            now = due
            h, served, t, clock = link._head, link._served, link._updated, env._now
            left = len(active) - h
            while True:
                tolerance = 1e-12 * (now if now > 1.0 else 1.0)
                while left:
                    mark, group, lat, last = active[h]
                    at = t + (mark - served) * left / (bandwidth if left < 2 else shared)
                    if at - now > tolerance:
                        if not last or now > t or keys and at > -keys[-1]:
                            break
                        # (back to back, on the spot: the transfer ends its group - its completion is the next ``due``,
                        # the prediction below would be this ``at`` - before the calendar's next entry: wake at it)
                        now = at
                        tolerance = 1e-12 * (now if now > 1.0 else 1.0)
                    if at < t:
                        at = t
                    t = at
                    served = mark
                    h += 1
                    left -= 1
                    if last:   # (the group's value at its last transfer only: the module's docstring)
                        value, waiter, then = group
                        end = at + lat
                        if end > value:
                            value = end
                        cls = waiter.__class__
                        if cls is Latest:
                            if value > waiter.value:
                                waiter.value = value
                            continue
                        if then.__class__ is tuple:
                            if len(then) == 3:
                                floor, a, b = then
                                target = ((value if value >= floor else floor) + a) + b
                            else:
                                floor, a, b, c = then
                                target = (((value if value >= floor else floor) + a) + b) + c
                        elif then is None:
                            target = at
                        else:
                            target = value + then
                        if cls is Event:     # (none on this path: _drain refuses SimPy events)
                            _fire(env, waiter, value, target - clock if target > clock else 0.0)
                            _drain(queue, keys, items)
                            continue
                        waiter.value = value
                        nt = -(clock + (target - clock if target > clock else 0.0))
                        k = bisect_left(keys, nt)
                        keys.insert(k, nt)
                        items.insert(k, waiter)
                if not left:         # none left: nothing to wake (every finished transfer dropped: see SharedLink.wake)
                    if now > t:
                        t = now
                    del active[:h]
                    del marks[:h]
                    h = 0
                    due = first = inf
                    break
                if now > t:          # (else the earliest transfer's prediction is the ``at`` it broke on)
                    served += (now - t) * (bandwidth if left < 2 else shared) / left
                    t = now
                    at = t + (mark - served) * left / (bandwidth if left < 2 else shared)
                first = at
                if not last:         # the earliest transfer's group has more: walk to its last (SharedLink._plan_wake)
                    was, rest = mark, left - 1
                    for k in range(h + 1, len(active)):
                        mark, _, _, last = active[k]
                        at += (mark - was) * rest / (bandwidth if rest < 2 else shared)
                        was = mark
                        rest -= 1
                        if last:
                            break
                due = at if at > now else now
                if keys and due > -keys[-1]:
                    if h > 256 and 2 * h > len(active):     # (drop finished transfers now and then: SharedLink.wake)
                        del active[:h]
                        del marks[:h]
                        h = 0
                    break
                now = due            # (the next group completes before the calendar's next entry: wake again)
            link._served, link._updated, link._head, link._first, link.due = served, t, h, first, due
            if due == inf and not (keys and due > -keys[-1]):
                return       # (none left in flight, nothing queued before the end of time; else, as below: it stopped
                # before the calendar's next entry, which comes now)
        # -- the calendar's next entry (its wake-ups after the link's: the loop comes back here at once)
        when = -keys.pop()
        item = items.pop()
        env._now = when
        cls = item.__class__
        if cls is Coroutine:     # (a delay's wake-up sends the value the worker left there: it ignores it)
            send, value = item.send, item.value
            try:
                wait = send(value)
            except StopIteration:
                item.send = item.upload = None
                continue
            if wait is None:
                continue
            if wait < 0.0:
                raise ValueError(f"a simulated worker asked to resume {wait!r} s in the past")
            nt = -(when + wait)
            k = bisect_left(keys, nt)
            keys.insert(k, nt)
            items.insert(k, item)
        elif cls is _Upload:     # the upload starts: SharedLink.transfer_one(nbytes, latency, coord, me)
            group = [when, item.me, coord]
            t = link._updated
            h = link._head
            if when != t:
                if link._first - when > 1e-12 * (when if when > 1.0 else 1.0):
                    if when > t:
                        left = len(active) - h
                        if left:
                            link._served += (when - t) * (bandwidth if left < 2 else shared) / left
                        link._updated = t = when
                else:
                    if not _complete_by(link, when):
                        link.wake(when)
                        if queue:
                            _drain(queue, keys, items)
                    t = link._updated
                    h = link._head
            served = link._served
            mark = served + item.nbytes
            k = bisect_right(marks, mark, h)
            marks.insert(k, mark)
            active.insert(k, (mark, group, latency, True))
            left = len(active) - h  # (SharedLink._plan_wake on the state in hand, as a worker's downloads)
            if k != h:
                mark, _, _, last = active[h]
                if not last:
                    t += (mark - served) * left / (bandwidth if left < 2 else shared)
                    link._first = t
                    was, rest = mark, left - 1
                    for k in range(h + 1, len(active)):
                        mark, _, _, last = active[k]
                        t += (mark - was) * rest / (bandwidth if rest < 2 else shared)
                        was = mark
                        rest -= 1
                        if last:
                            break
                    link.due = t if t > when else when
                    continue
            t += (mark - served) * left / (bandwidth if left < 2 else shared)
            link._first = t
            link.due = t if t > when else when
        elif cls is tuple:       # a start message (task, worker, at): deliver it, spawn the worker's loop
            j, cw, at = item     # (loop.spawn inlined: its Coroutine resumed here like any other)
            arrival[j] = at
            item = new(Coroutine)   # (Coroutine(env) without its fields for the general loop's resume())
            item.value = None
            send = item.send = worker(run_, cw, at, item).send
            try:
                wait = send(None)
            except StopIteration:
                item.send = item.upload = None
                continue
            if wait is None:
                continue
            if wait < 0.0:
                raise ValueError(f"a simulated worker asked to resume {wait!r} s in the past")
            nt = -(when + wait)
            k = bisect_left(keys, nt)
            keys.insert(k, nt)
            items.insert(k, item)
        else:                    # a message in flight (Run.release, a pre-warmed start): the general code,
            item.resume()        # which queues in SimPy's queue
            if queue:
                _drain(queue, keys, items)

def _complete_by(link: SharedLink, now: float) -> bool:
    """:meth:`SharedLink.wake` at ``now`` (before a new transfer), when the transfers it completes end no group.

    Such transfers only move the link's clock (their groups' values are taken at their last transfers:
    see the module's docstring), so they complete here without the general wake-up's group steps and
    its prediction, which the new transfer's replaces.  When a transfer due by ``now`` ends its group,
    nothing is changed and False is returned: the caller wakes the link in full.
    """
    active, h, t, served = link._active, link._head, link._updated, link._served
    bandwidth, shared = link.bandwidth, link.shared_bandwidth
    left = len(active) - h
    tolerance = 1e-12 * (now if now > 1.0 else 1.0)
    while left:
        mark, _, _, last = active[h]
        at = t + (mark - served) * left / (bandwidth if left < 2 else shared)
        if at - now > tolerance:
            break
        if last:
            return False
        if at < t:
            at = t
        t = at
        served = mark
        h += 1
        left -= 1
    if left and now > t:
        served += (now - t) * (bandwidth if left < 2 else shared) / left
        t = now
    link._served, link._updated = served, t if t > now else now
    if h > 256 and 2 * h > len(active):
        del active[:h]
        del link._marks[:h]
        h = 0
    link._head = h
    return True


def _drain(queue: list, keys: list[float], items: list) -> None:
    """Move what the general code put in SimPy's queue (``link.wake``'s wake-ups, a spawned worker's first
    wait, a delivered message's) into the fast path's calendar (see :func:`run`), in SimPy's order.

    Called right after each such call, so the entries it moves were queued after every entry already in
    the calendar and before any the fast path queues next: placed after the calendar's entries at the same
    time, they keep SimPy's order (time, then the order of queueing; every entry here has NORMAL priority).
    """
    while queue:
        when, _, _, item = heappop(queue)
        if isinstance(item, Event):
            raise RuntimeError("the simulator's fast path met a SimPy event (simulator.fast_loop.applies "
                               "should have sent this run to the general loop)")
        nt = -when
        k = bisect_left(keys, nt)
        keys.insert(k, nt)
        items.insert(k, item)
