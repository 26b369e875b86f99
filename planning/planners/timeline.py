"""A worker's timeline in an insertion-based list scheduler: its busy intervals, and the earliest gap for a task.

HEFT (:mod:`planning.planners.heft`) keeps one per worker: a task goes into the first
idle gap long enough for it after its data is ready, and a worker's first task pays
the worker's start-up.  Cost: O(log k + g) per query for k intervals and g gaps too
small, O(k) per insertion (list insert).
"""

from __future__ import annotations

from bisect import bisect_right


class Timeline:
    """Busy intervals of one worker, sorted and disjoint."""

    __slots__ = ("starts", "ends", "tasks")

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.tasks: list[int] = []

    def earliest_start(self, ready: float, dur: float, startup: float = 0.0) -> float:
        """Earliest start >= ready of a ``dur``-long task; before the first interval it pays ``startup``."""
        ends = self.ends
        if not ends:
            return ready + startup
        if ready >= ends[-1]:
            return ready
        starts = self.starts
        k = bisect_right(ends, ready)  # intervals [0, k) end at or before ready
        t = ready
        n = len(starts)
        if k == 0 and startup > 0.0:   # the gap before the first task: the worker must start first
            if ready + startup + dur <= starts[0]:
                return ready + startup
            t = ends[0]
            k = 1
        while k < n:
            if t + dur <= starts[k]:
                return t
            t = ends[k]  # > ready
            k += 1
        return t

    def add(self, start: float, end: float, task: int) -> None:
        pos = bisect_right(self.starts, start)
        # keep zero-length intervals ordered consistently with ends
        while pos > 0 and self.starts[pos - 1] == start and self.ends[pos - 1] > end:
            pos -= 1
        self.starts.insert(pos, start)
        self.ends.insert(pos, end)
        self.tasks.insert(pos, task)
