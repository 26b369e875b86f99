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

import heapq

import simpy


class SharedLink:
    """Bandwidth ``bandwidth_Bps`` shared equally by concurrent transfers."""

    def __init__(self, env: simpy.Environment, bandwidth_Bps: float) -> None:
        self.env = env
        self.bandwidth = float(bandwidth_Bps)
        self._served = 0.0       # bytes each active transfer has received so far (virtual clock)
        self._updated = 0.0      # simulated time of the last update of _served
        self._heap: list[tuple[float, int, simpy.Event]] = []
        self._count = 0
        self._generation = 0
        self._pending: float | None = None

    def transfer(self, nbytes: float) -> simpy.Event:
        """An event that fires when ``nbytes`` have gone through (starting now)."""
        done = self.env.event()
        if nbytes <= 0:
            done.succeed()
            return done
        self._advance()
        heapq.heappush(self._heap, (self._served + nbytes, self._count, done))
        self._count += 1
        self._reschedule()
        return done

    def _advance(self) -> None:
        now = self.env.now
        if self._heap:
            self._served += (now - self._updated) * self.bandwidth / len(self._heap)
        self._updated = now

    def _reschedule(self) -> None:
        """Make sure a wake-up is pending no later than the next completion.

        A pending wake-up that is earlier is kept (it recomputes when it fires), so
        a new transfer, which only delays the others, costs no extra event.
        """
        if not self._heap:
            return
        due = self.env.now + max((self._heap[0][0] - self._served) * len(self._heap) / self.bandwidth, 0.0)
        if self._pending is not None and self._pending <= due:
            return
        self._generation += 1
        self._pending = due
        generation = self._generation
        self.env.timeout(due - self.env.now).callbacks.append(lambda _e: self._wake(generation))

    def _wake(self, generation: int) -> None:
        if generation != self._generation:
            return  # superseded by an earlier wake-up
        self._pending = None
        self._advance()
        now, heap = self.env.now, self._heap
        slack = 1e-9 * max(1.0, self._served)
        # done: its bytes are served, or what is left would finish within the clock's resolution
        while heap and (heap[0][0] <= self._served + slack
                        or now + (heap[0][0] - self._served) * len(heap) / self.bandwidth <= now):
            heapq.heappop(heap)[2].succeed()
        self._reschedule()


class FifoServer:
    """One server, first come first served; ``serve`` returns the departure time."""

    def __init__(self) -> None:
        self.free_at = 0.0

    def serve(self, arrival: float, work: float) -> float:
        start = arrival if arrival > self.free_at else self.free_at
        self.free_at = start + work
        return self.free_at
