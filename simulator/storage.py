"""Shared resources of the simulated world: storage bandwidth and serial servers.

:class:`SharedLink` is storage bandwidth shared equally by the transfers in
flight (processor sharing): with ``n`` transfers each progresses at
``bandwidth / n``.  It keeps one virtual clock (bytes served to every active
transfer so far) and a heap of finish marks, so a transfer costs O(log n) and a
change of ``n`` reschedules a single SimPy timeout.

:class:`FifoServer` is a single server that serves requests one at a time in
arrival order (the workflow system's dispatcher, its stager).  Requests must come
in non-decreasing time, which the event loop guarantees; then the departure of a
request is plain arithmetic, with no SimPy event at all.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Callable

import simpy
from simpy.events import Event, Timeout


class SharedLink:
    """Bandwidth ``bandwidth_Bps`` shared equally by concurrent transfers.

    The hot path of a run with finite bandwidth, so the bookkeeping (advance the
    virtual clock, keep one wake-up pending no later than the next completion) is
    written out inline in :meth:`transfer` and :meth:`_wake`.
    """

    def __init__(self, env: simpy.Environment, bandwidth_Bps: float) -> None:
        self.env = env
        self.bandwidth = float(bandwidth_Bps)
        self._served = 0.0       # bytes each active transfer has received so far (virtual clock)
        self._updated = 0.0      # simulated time of the last update of _served
        self._heap: list[tuple[float, int, list, float]] = []   # (mark, seq, group, latency)
        self._count = 0
        self._pending: float | None = None          # time of the pending wake-up
        self._pending_event: simpy.Event | None = None

    def transfer(self, nbytes: float) -> simpy.Event:
        """An event that fires when ``nbytes`` have gone through (starting now)."""
        if nbytes <= 0:
            done = Event(self.env)
            done.succeed()
            return done
        return self.transfers([(nbytes, 0.0)], self.env._now)

    def transfers(self, items: list[tuple[float, float]], end: float,
                  then: float | Callable[[float], float] | None = None) -> simpy.Event:
        """Start transfers now, ``(nbytes > 0, latency)`` each; ONE event for all of them.

        Its value is ``max(end, completion + latency)`` over the transfers.  It fires at
        the last completion, or - with ``then`` - at that value plus ``then`` (a float)
        or at ``then(value)`` (a callable), scheduled from the last completion with the
        arithmetic a waiting process would use (``delay = target - now``, no earlier
        than now), which saves the caller's separate timeout.
        """
        env = self.env
        done = Event(env)
        group = [len(items), end, done, then]
        heap = self._heap
        now = env._now
        if heap:   # advance the virtual clock to now
            self._served += (now - self._updated) * self.bandwidth / len(heap)
        self._updated = now
        served = self._served
        count = self._count
        for nbytes, lat in items:
            heappush(heap, (served + nbytes, count, group, lat))
            count += 1
        self._count = count
        self._reschedule(now)
        return done

    def _reschedule(self, now: float) -> None:
        """Make sure a wake-up is pending no later than the next completion.

        A pending wake-up that is earlier is kept (it recomputes when it fires), so
        a new transfer, which only delays the others, costs no extra event.
        """
        heap = self._heap
        if not heap:
            return
        wait = (heap[0][0] - self._served) * len(heap) / self.bandwidth
        if wait < 0.0:
            wait = 0.0
        due = now + wait
        pending = self._pending
        if pending is not None and pending <= due:
            return
        self._pending = due
        event = self._pending_event = Timeout(self.env, due - now)
        event.callbacks.append(self._wake)

    def _wake(self, event: simpy.Event) -> None:
        if event is not self._pending_event:
            return  # superseded by an earlier wake-up
        self._pending = None
        self._pending_event = None
        heap, bandwidth, env = self._heap, self.bandwidth, self.env
        now = env._now
        if heap:
            self._served += (now - self._updated) * bandwidth / len(heap)
        self._updated = now
        served = self._served
        slack = 1e-9 * (served if served > 1.0 else 1.0)
        # done: its bytes are served, or what is left would finish within the clock's resolution
        schedule = env.schedule
        while heap and (heap[0][0] <= served + slack or now + (heap[0][0] - served) * len(heap) / bandwidth <= now):
            _, _, group, lat = heappop(heap)
            t = now + lat
            if t > group[1]:
                group[1] = t
            group[0] -= 1
            if group[0] == 0:   # the group's last transfer: one event for all
                ev, then = group[2], group[3]
                ev._ok = True
                ev._value = group[1]
                if then is None:
                    schedule(ev)
                else:
                    delay = (then(group[1]) if callable(then) else group[1] + then) - now
                    schedule(ev, delay=delay if delay > 0 else 0.0)
        if heap:   # _reschedule inlined (nothing is pending now)
            wait = (heap[0][0] - served) * len(heap) / bandwidth
            if wait < 0.0:
                wait = 0.0
            due = now + wait
            self._pending = due
            event = self._pending_event = Timeout(env, due - now)
            event.callbacks.append(self._wake)


class FifoServer:
    """One server, first come first served; ``serve`` returns the departure time."""

    def __init__(self) -> None:
        self.free_at = 0.0

    def serve(self, arrival: float, work: float) -> float:
        start = arrival if arrival > self.free_at else self.free_at
        self.free_at = start + work
        return self.free_at
