"""Shared resources of the simulated world: storage bandwidth and serial servers.

:class:`SharedLink` is storage bandwidth shared equally by the transfers in
flight (processor sharing): with ``n`` transfers each progresses at
``bandwidth / n``.  It keeps one virtual clock (bytes served to every active
transfer so far) and the transfers sorted by finish mark, and puts a wake-up in
SimPy's queue only when a group of transfers completes.

:class:`FifoServer` is a single server that serves requests one at a time in
arrival order (the workflow system's dispatcher, its stager).  Requests must come
in non-decreasing time, which the event loop guarantees; then the departure of a
request is plain arithmetic, with no SimPy event at all.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from heapq import heappush
from typing import Any, Sequence

import simpy
from simpy.events import NORMAL, Event


class SharedLink:
    """Bandwidth ``bandwidth_Bps`` shared equally by concurrent transfers (processor sharing).

    ``sharing`` (the platform's ``storage_sharing``): two concurrent transfers each take ``sharing``
    times as long as one alone, so while two or more are in flight the link's total rate is
    ``bandwidth * 2 / sharing`` (2, the default, is one bandwidth split equally, bit for bit).

    A transfer of ``b`` bytes started when every active transfer had received ``s``
    bytes (the *virtual clock*) finishes when the clock reaches its *mark* ``s + b``;
    the clock advances at ``bandwidth / active`` bytes per second.  Marks do not depend
    on later arrivals, so the active transfers are kept sorted by mark and complete in
    that order.

    Only a *group's* completion (the last of the transfers one process started
    together) wakes anything: the link keeps ``due``, the predicted completion of
    the earliest group, and :func:`simulator.loop.run` calls :meth:`wake` then,
    between the entries of SimPy's queue.  That is one float, not an entry in the queue, so a new
    transfer (which can only delay the others) simply re-predicts it.  Transfers
    that finish before it are completed arithmetically, with their exact times,
    whenever the link next looks (a new transfer or a wake-up).  Each finished
    group wakes its waiter once.
    """

    # (slots: its fields are read several times per transfer on the hot path)
    __slots__ = ("env", "bandwidth", "shared_bandwidth", "_served", "_updated", "_active", "_marks", "_head", "due", "_first")

    def __init__(self, env: simpy.Environment, bandwidth_Bps: float, sharing: float = 2.0) -> None:
        self.env = env
        self.bandwidth = float(bandwidth_Bps)
        #: the link's total rate while two or more transfers are in flight: ``bandwidth * 2 / sharing``, where
        #: ``sharing`` is how many times longer two concurrent transfers take than one alone (2: equal shares
        #: of one bandwidth, exactly ``bandwidth``; a real server overlaps a little of two clients' work, ~1.7)
        self.shared_bandwidth = self.bandwidth if sharing == 2.0 else self.bandwidth * 2.0 / sharing
        self._served = 0.0       # the virtual clock: bytes each active transfer has received so far
        self._updated = 0.0      # simulated time the virtual clock was last brought up to date
        #: active transfers sorted by mark, equal marks in start order: (mark, group, latency, last of its group);
        #: done before _head.
        #: A group is [its value so far, waiter, then]; its last transfer (the largest, ties: the latest) ends it.
        self._active: list[tuple[float, list, float, bool]] = []
        #: the marks of ``_active`` alone, in the same order: a new transfer's place is found by bisecting
        #: plain floats (one float comparison per step) instead of the tuples (two, and the tuple's own)
        self._marks: list[float] = []
        self._head = 0
        self.due = math.inf           # when the earliest group completes (as far as the link knows now)
        self._first = math.inf        # when the earliest transfer completes (likewise)

    def transfers(self, sizes: Sequence[float], latency: float | Sequence[float], end: float,
                  then: float | tuple[float, ...] | None = None,
                  waiter: Any = None) -> simpy.Event | None:
        """Start transfers of ``sizes`` bytes (each > 0) now, in parallel; ONE wake-up for all of them.

        ``latency`` (one for all, or one per transfer) is added after a transfer's bytes.
        The group's value is ``max(end, completion + latency)`` over the transfers.  It
        is delivered at the last completion, or - with ``then`` - later: at ``value +
        then`` (a float), or at ``(max(value, floor) + a) + b`` for ``then = (floor, a,
        b)`` (``((max(value, floor) + a) + b) + c`` for ``(floor, a, b, c)``), scheduled with
        the arithmetic a waiting process would use, which saves the caller's separate
        timeout.  It wakes ``waiter`` (a :class:`~simulator.loop.Coroutine` or another item
        :func:`simulator.loop.run` resumes; a :class:`Latest` only records the value, at
        once); with no waiter, the returned SimPy event fires with it instead.
        """
        if not sizes:
            raise ValueError("SharedLink.transfers needs at least one transfer (an empty group would never complete)")
        env = self.env
        now = env._now
        done = Event(env) if waiter is None else None
        group = [end, waiter or done, then]
        if now != self._updated:
            self._catch_up(now)
        active, marks, head = self._active, self._marks, self._head
        served = self._served
        if len(sizes) == 1:
            mark = served + sizes[0]
            k = bisect_right(marks, mark, head)    # (after equal marks: they started earlier)
            marks.insert(k, mark)
            active.insert(k, (mark, group, latency[0] if isinstance(latency, (list, tuple)) else latency, True))
        else:
            last = 0                       # the group's largest transfer finishes last (ties: the latest)
            for k in range(1, len(sizes)):
                if sizes[k] >= sizes[last]:
                    last = k
            per_transfer = isinstance(latency, (list, tuple))
            for k, nbytes in enumerate(sizes):
                mark = served + nbytes
                at = bisect_right(marks, mark, head)
                marks.insert(at, mark)
                active.insert(at, (mark, group, latency[k] if per_transfer else latency, k == last))
        self._plan_wake(now)
        return done

    def transfer_one(self, nbytes: float, latency: float, then: float | tuple[float, ...] | None,
                     waiter: Any) -> None:
        """:meth:`transfers` of one transfer of ``nbytes`` (> 0) starting now, woken through ``waiter``: the
        simulator's usual case (every upload, most downloads), with the same arithmetic and none of the
        general case's checks; the prediction of the next completion is inlined when the earliest transfer
        is the last of its group (the usual case again)."""
        now = self.env._now
        group = [now, waiter, then]
        t = self._updated
        if now != t:
            if self._first - now > 1e-12 * (now if now > 1.0 else 1.0):   # (_catch_up's usual case, inlined)
                left = len(self._active) - self._head
                if left and now > t:
                    self._served += (now - t) * (self.bandwidth if left < 2 else self.shared_bandwidth) / left
                if now > t:
                    t = now
                self._updated = t
            else:
                self.wake(now)
                t = self._updated
        active, marks, h = self._active, self._marks, self._head
        served = self._served
        mark = served + nbytes
        k = bisect_right(marks, mark, h)
        marks.insert(k, mark)
        active.insert(k, (mark, group, latency, True))
        if k != h:             # (else the new transfer is the earliest: it ends its group, its own)
            mark = marks[h]
            if not active[h][3]:
                self._plan_wake(now)
                return
        left = len(active) - h
        t += (mark - served) * left / (self.bandwidth if left < 2 else self.shared_bandwidth)  # (_plan_wake's first step)
        self._first = t
        self.due = t if t > now else now

    def _catch_up(self, now: float) -> None:
        """Bring the link's clock to ``now`` before a new transfer: when nothing completes by then (the usual
        case), wake()'s arithmetic without its walk; otherwise :meth:`wake`."""
        t = self._updated
        if self._first - now > 1e-12 * (now if now > 1.0 else 1.0):
            left = len(self._active) - self._head
            if left and now > t:
                self._served += (now - t) * (self.bandwidth if left < 2 else self.shared_bandwidth) / left
            self._updated = t if t > now else now
        else:
            self.wake(now)

    def wake(self, now: float | None = None) -> None:
        """Complete, in mark order, every transfer whose bytes are served by ``now`` (default: ``due``, when
        :func:`simulator.loop.run` calls it, with SimPy's clock at or before it); bring the clock to ``now``;
        predict the next group's completion (:meth:`_plan_wake`, its usual first step inlined)."""
        if now is None:
            now = self.due
        env, active, h, bandwidth, shared = self.env, self._active, self._head, self.bandwidth, self.shared_bandwidth
        served, t = self._served, self._updated
        queue, ids, clock = env._queue, env._eid, env._now   # (SimPy's clock may still be before ``now``)
        left = len(active) - h
        tolerance = 1e-12 * (now if now > 1.0 else 1.0)   # a wake-up lands on its prediction up to rounding
        while left:
            mark, group, lat, last = active[h]
            at = t + (mark - served) * left / (bandwidth if left < 2 else shared)
            if at - now > tolerance:
                break
            if at < t:
                at = t
            t, served = at, mark
            h += 1
            left -= 1
            value = group[0]
            if at + lat > value:
                group[0] = value = at + lat
            if last:                   # the group's last transfer (its others are done before it): its one wake-up
                then = group[2]
                if then is None:
                    target = at
                elif then.__class__ is tuple:
                    if len(then) == 3:
                        floor, a, b = then
                        target = ((value if value >= floor else floor) + a) + b
                    else:
                        floor, a, b, c = then
                        target = (((value if value >= floor else floor) + a) + b) + c
                else:
                    target = value + then
                waiter = group[1]
                if waiter.__class__ is Latest:     # order-free: recorded now, no queue entry
                    if value > waiter.value:
                        waiter.value = value
                elif waiter.__class__ is Event:
                    _fire(env, waiter, value, target - clock if target > clock else 0.0)
                else:                      # a Coroutine, or any waiter simulator.loop.run resumes
                    waiter.value = value
                    heappush(queue, (clock + (target - clock if target > clock else 0.0), NORMAL, next(ids), waiter))
        if left and now > t:
            served += (now - t) * (bandwidth if left < 2 else shared) / left
            t = now
        t = t if t > now else now
        self._served, self._updated = served, t
        # drop finished transfers now and then, and always when none is left: their groups hold their
        # waiters, which hold the run - a reference cycle that would outlive the run
        if h > 256 and 2 * h > len(active) or not left:
            del active[:h]
            del self._marks[:h]
            h = 0
        self._head = h
        if not left:                       # none left: nothing to wake (_plan_wake's first case)
            self.due = self._first = math.inf
            return
        if not active[h][3]:               # the earliest transfer's group has more: walk
            self._plan_wake(now)
            return
        t += (active[h][0] - served) * left / (bandwidth if left < 2 else shared)  # (it ends its group: as _plan_wake)
        self._first = t
        self.due = t if t > now else now

    def _plan_wake(self, now: float) -> None:
        """Predict when the earliest group completes, walking the transfers by mark up to its last one."""
        active, h = self._active, self._head
        left = len(active) - h
        if not left:
            self.due = self._first = math.inf
            return
        bandwidth, shared = self.bandwidth, self.shared_bandwidth
        t, served = self._updated, self._served
        mark, _, _, last = active[h]
        t += (mark - served) * left / (bandwidth if left < 2 else shared)   # (as wake()'s first step)
        self._first = t
        if not last:
            served = mark
            left -= 1
            for k in range(h + 1, len(active)):
                mark, _, _, last = active[k]
                t += (mark - served) * left / (bandwidth if left < 2 else shared)
                served = mark
                left -= 1
                if last:
                    break
        self.due = t if t > now else now


class Latest:
    """A waiter that only keeps the latest completion of its groups (the client's downloads of the sinks:
    the makespan is when it holds the last result).  Nothing waits for it in simulated time and a maximum
    does not depend on the order it is taken in, so the link records each group's value at once instead of
    queueing a wake-up for it (one queue entry less per sink)."""

    __slots__ = ("value",)

    def __init__(self, value: float = 0.0) -> None:
        self.value = value


def _fire(env: simpy.Environment, event: Event, value: float, delay: float) -> None:
    """Trigger a SimPy event waiting for a group (a caller that gave no waiter) with the group's value."""
    event._ok = True
    event._value = value
    env.schedule(event, delay=delay)


class FifoServer:
    """One server, first come first served; ``serve`` returns the departure time."""

    def __init__(self) -> None:
        self.free_at = 0.0

    def serve(self, arrival: float, work: float) -> float:
        start = arrival if arrival > self.free_at else self.free_at
        self.free_at = start + work
        return self.free_at
