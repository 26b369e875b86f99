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

:class:`RankedLink` is the same link shared unequally, the transfers in flight longer
favoured (``Platform.storage_first_come``); :func:`link_for` builds a platform's link.
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


class RankedLink:
    """The link of :class:`SharedLink` (its ``bandwidth``, its ``sharing``) shared unequally: the transfers in flight
    longer get more of it (the platform's ``storage_first_come`` ``p``, 0 < p <= 1; at 0 the engine builds a
    :class:`SharedLink`, whose processor sharing is this link at 0).

    Why (issue 17): on planlab's executor two overlapping 10 MB downloads from the one server did not share it
    equally - the ladder's spine took 13-24 ms and its side branch's 36-51 ms, starting within 4 ms of each other,
    where equal shares gave both 29.8 ms.  Measured apart, start order is a small part of that: the host probe's
    pairs (two workers woken by notifications) give the first a lead of p = 0.06-0.29 (median 0.11) on a loaded
    host and none on a quiet one, while a background fetch beside a CPU-bound task gets the smaller share whichever
    started first, which this term does not model.

    The rule: the transfers in flight ranked by start (a group's in its order; equal starts keep their order), the
    ``k``-th (from 0) weighs ``q ** k`` with ``q = (1 - p) / (1 + p)``, and each moves at the link's total rate
    (``bandwidth`` alone, ``bandwidth * 2 / sharing`` with two or more) times its weight over the weights' sum.
    Of two, the first gets ``(1 + p) / 2``: ``p = 0`` equal shares, ``p = 1`` first come first served (the later
    transfer waits).  The total rate does not depend on ``p``, so neither does the time both take together.

    The same interface as :class:`SharedLink` (``transfers``, ``transfer_one``, ``wake``, ``due``; a group's value
    and its one wake-up, ``then``, :class:`Latest` and event waiters alike), with plain per-transfer arithmetic
    instead of its virtual clock (a transfer's rate changes when one ahead of it ends): each arrival and each
    completion walks the transfers in flight.  Only a platform that sets the term builds it, and such a platform
    runs the general loops (:func:`simulator.transfers.plain_transfers`), which reach the link only through
    that interface.
    """

    __slots__ = ("env", "bandwidth", "shared_bandwidth", "first_come", "_ratio", "_flows", "_updated", "due")

    def __init__(self, env: simpy.Environment, bandwidth_Bps: float, sharing: float = 2.0,
                 first_come: float = 0.0) -> None:
        if not 0.0 <= first_come <= 1.0:
            raise ValueError(f"first_come must be between 0 and 1, got {first_come!r}")
        self.env = env
        self.bandwidth = float(bandwidth_Bps)
        self.shared_bandwidth = self.bandwidth if sharing == 2.0 else self.bandwidth * 2.0 / sharing
        self.first_come = float(first_come)
        #: the weight of each transfer over the one started just before it
        self._ratio = (1.0 - self.first_come) / (1.0 + self.first_come)
        #: transfers in flight in start order: [bytes left, group, latency]; a group is
        #: [its value so far, waiter, then, its transfers left]
        self._flows: list[list] = []
        self._updated = 0.0
        self.due = math.inf

    def transfers(self, sizes: Sequence[float], latency: float | Sequence[float], end: float,
                  then: float | tuple[float, ...] | None = None,
                  waiter: Any = None) -> simpy.Event | None:
        """As :meth:`SharedLink.transfers`: start transfers of ``sizes`` bytes now, ONE wake-up for all of them."""
        if not sizes:
            raise ValueError("RankedLink.transfers needs at least one transfer (an empty group would never complete)")
        env = self.env
        now = env._now
        done = Event(env) if waiter is None else None
        group = [end, waiter or done, then, len(sizes)]
        self._advance(now)
        per_transfer = isinstance(latency, (list, tuple))
        for k, nbytes in enumerate(sizes):
            self._flows.append([float(nbytes), group, latency[k] if per_transfer else latency])
        self._plan_wake(now)
        return done

    def transfer_one(self, nbytes: float, latency: float, then: float | tuple[float, ...] | None,
                     waiter: Any) -> None:
        """As :meth:`SharedLink.transfer_one`: one transfer of ``nbytes`` starting now, woken through ``waiter``."""
        now = self.env._now
        self._advance(now)
        self._flows.append([float(nbytes), [now, waiter, then, 1], latency])
        self._plan_wake(now)

    def wake(self, now: float | None = None) -> None:
        """Complete every transfer whose bytes are served by ``now`` (default ``due``) and predict the next."""
        if now is None:
            now = self.due
        self._advance(now)
        self._plan_wake(now)

    def _rates(self) -> list[float]:
        """Each transfer's bytes per second now, in start order."""
        n = len(self._flows)
        if n == 1:
            return [self.bandwidth]
        q, weights, w = self._ratio, [], 1.0
        for _ in range(n):
            weights.append(w)
            w *= q
        total = self.shared_bandwidth / math.fsum(weights)
        return [w * total for w in weights]

    def _next(self) -> tuple[float, int]:
        """(seconds from the link's clock to the next completion, which transfer) at the current rates."""
        best, which = math.inf, -1
        if not self._flows:
            return best, which
        for k, (flow, rate) in enumerate(zip(self._flows, self._rates())):
            if rate > 0.0:
                dt = flow[0] / rate
                if dt < best:
                    best, which = dt, k
        return best, which

    def _advance(self, now: float) -> None:
        """Serve the transfers up to ``now``, completing in turn each one whose bytes are served by then."""
        flows, t = self._flows, self._updated
        tolerance = 1e-12 * (now if now > 1.0 else 1.0)
        while flows:
            dt, k = self._next()
            at = t + dt
            if at - now > tolerance:
                break
            if dt > 0.0:
                for flow, rate in zip(flows, self._rates()):
                    flow[0] -= rate * dt
            if at > t:
                t = at
            self._complete(flows.pop(k), t)
        if flows and now > t:
            dt = now - t
            for flow, rate in zip(flows, self._rates()):
                flow[0] -= rate * dt
        self._updated = t if t > now else now

    def _complete(self, flow: list, at: float) -> None:
        """One transfer's bytes done at ``at``: its group's value, and its one wake-up when it was the group's last."""
        _, group, lat = flow
        if at + lat > group[0]:
            group[0] = at + lat
        group[3] -= 1
        if group[3]:
            return
        value, waiter, then = group[0], group[1], group[2]
        if then is None:
            target = at
        elif then.__class__ is tuple:
            target = (max(value, then[0]) + then[1]) + then[2]
            if len(then) == 4:
                target += then[3]
        else:
            target = value + then
        env = self.env
        clock = env._now
        delay = target - clock if target > clock else 0.0
        if waiter.__class__ is Latest:
            if value > waiter.value:
                waiter.value = value
        elif waiter.__class__ is Event:
            _fire(env, waiter, value, delay)
        else:
            waiter.value = value
            heappush(env._queue, (clock + delay, NORMAL, next(env._eid), waiter))

    def _plan_wake(self, now: float) -> None:
        dt, _ = self._next()
        at = self._updated + dt
        self.due = at if at > now else now


def link_for(env: simpy.Environment, platform: Any,
             bandwidth_Bps: float | None = None) -> "SharedLink | RankedLink | None":
    """The platform's storage link: None when it is free (infinite bandwidth), a :class:`RankedLink` when
    ``storage_first_come`` favours the earlier transfers, else the processor-sharing :class:`SharedLink`
    (``bandwidth_Bps``: its rate, when not ``storage_bandwidth_Bps``: a duplex platform's download link)."""
    if not math.isfinite(platform.storage_bandwidth_Bps):
        return None
    rate = platform.storage_bandwidth_Bps if bandwidth_Bps is None else bandwidth_Bps
    if platform.storage_first_come > 0.0:
        return RankedLink(env, rate, platform.storage_sharing, platform.storage_first_come)
    return SharedLink(env, rate, platform.storage_sharing)


class DuplexLink:
    """Uploads and downloads on links of their own (``Platform.storage_duplex``): what the event loop
    (:func:`simulator.loop.run`) drives in place of one link - the earlier ``due`` of the two, and a wake-up
    of the one due (the upload link first at a tie).  Transfers go to :attr:`up` or :attr:`down` directly
    (``Run.link`` and ``Run.down_link``).

    Why: over a network each direction of a full-duplex link has its own capacity, so an upload
    does not slow a download beside it (the storage behind a shaped link,
    ``benchmarks/_remote_link.py``); on the embedded server one thread and the host's memory serve
    both directions, which one link models.
    """

    __slots__ = ("up", "down")

    def __init__(self, up: "SharedLink | RankedLink", down: "SharedLink | RankedLink") -> None:
        self.up, self.down = up, down

    @property
    def due(self) -> float:
        up, down = self.up.due, self.down.due
        return up if up <= down else down

    def wake(self) -> None:
        (self.up if self.up.due <= self.down.due else self.down).wake()


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
