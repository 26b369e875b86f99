"""HEFT's worker pools: the workers of every profile, their timelines, and the search for a task's earliest finish.

Workers form one pool per profile: ``workers_per_profile`` workers each, with ids
``f"{profile}-{k}"``.  ``None`` means an unbounded (serverless) pool: a task may
always go to a fresh worker of any profile.  Only the workers hosting a parent of
the task and one fresh worker per profile are candidates then; this is exact, since
any other used worker has the same data-ready time as a fresh one and so cannot
finish the task strictly earlier (on a tie the fresh worker is taken).  With a
start-up, a used (warm) worker can beat a fresh one: the used worker of each
profile that frees up first (a lazy heap of last finish times) is a candidate
too, appended after its last task; this ignores idle gaps of non-host workers, so
the unbounded search is then a heuristic (exact with zero start-up).

The algorithm that uses them is :func:`planning.planners.heft.heft`; the result it
returns (:class:`HeftResult`) is built here from the pools' timelines.
"""

from __future__ import annotations

from dataclasses import dataclass
from heapq import heappop, heappush
from typing import Sequence

import numpy as np

from planning.planners.timeline import Timeline


@dataclass(frozen=True)
class HeftResult:
    worker_of: dict[str, str]          # task id -> worker id
    worker_profile: dict[str, str]     # worker id -> profile name
    sequence: dict[str, list[str]]     # worker id -> its tasks in start-time order
    start_s: dict[str, float]
    finish_s: dict[str, float]
    makespan_s: float                  # HEFT's own model: max finish


def pool_sizes(workers_per_profile: int | Sequence[int] | None, m: int) -> list[int] | None:
    """Workers per profile as a list of ``m`` sizes >= 1, or None for unbounded pools."""
    if workers_per_profile is None:
        return None
    if isinstance(workers_per_profile, (int, np.integer)):
        counts = [int(workers_per_profile)] * m
    else:
        counts = [int(c) for c in workers_per_profile]
        if len(counts) != m:
            raise ValueError(f"workers_per_profile gives {len(counts)} pool sizes for {m} profiles")
    if any(c < 1 for c in counts):
        raise ValueError("workers_per_profile must be >= 1 (per profile) or None (unbounded)")
    return counts


class WorkerPools:
    """The workers of every profile's pool, their timelines, and the search for a task's earliest finish."""

    def __init__(self, profiles: list[str], counts: list[int] | None, boot: list[float]) -> None:
        self.profiles, self.boot = profiles, boot
        m = len(profiles)
        self.worker_ids: list[str] = []
        self.worker_prof: list[int] = []
        self.timelines: list[Timeline] = []
        self.per_profile: list[list[int]] = [[] for _ in range(m)]  # worker indices per profile, in creation order
        self.bounded = counts is not None
        if counts is not None:
            for p in range(m):
                for _ in range(counts[p]):
                    self.new_worker(p)
        self.all_workers = list(range(len(self.worker_ids)))  # profile-major order (bounded pools)
        self.free_heaps: list[list[tuple[float, int]]] = [[] for _ in range(m)]   # per profile: (last finish, worker)
        self.track_free = not self.bounded and any(b > 0.0 for b in boot)

    def new_worker(self, p: int) -> int:
        w = len(self.worker_ids)
        self.worker_ids.append(f"{self.profiles[p]}-{len(self.per_profile[p])}")
        self.worker_prof.append(p)
        self.timelines.append(Timeline())
        self.per_profile[p].append(w)
        return w

    def bounded_choice(self, row: list[float], R: float, ready_of: dict[int, float]) -> tuple[int, float, float]:
        """The (worker, start, finish) finishing first among a bounded pool's workers."""
        best_f, best_w, best_s = float("inf"), -1, 0.0
        worker_prof, timelines, boot = self.worker_prof, self.timelines, self.boot
        for w in self.all_workers:
            p = worker_prof[w]
            d = row[p]
            s = timelines[w].earliest_start(ready_of.get(w, R), d, boot[p])
            f = s + d
            if f < best_f:
                best_f, best_w, best_s = f, w, s
        return best_w, best_s, best_f

    def unbounded_choice(self, row: list[float], R: float, ready_of: dict[int, float]) -> tuple[int, float, float]:
        """Hosts of a parent, one fresh worker per profile (``-1 - p``) and, with start-ups, the first-free warm one."""
        best_f, best_w, best_s = float("inf"), -1, 0.0
        worker_prof, timelines, boot, free_heaps = self.worker_prof, self.timelines, self.boot, self.free_heaps
        m = len(boot)
        hosts_by_prof: list[list[int]] = [[] for _ in range(m)]
        for w in sorted(ready_of):
            hosts_by_prof[worker_prof[w]].append(w)
        for p in range(m):
            d = row[p]
            b = boot[p]
            for w in hosts_by_prof[p]:
                s = timelines[w].earliest_start(ready_of[w], d, b)
                f = s + d
                if f < best_f:
                    best_f, best_w, best_s = f, w, s
            f = R + b + d  # a fresh worker of profile p (cold)
            if f < best_f:
                best_f, best_w, best_s = f, -1 - p, R + b
            if b > 0.0:    # the warm worker of profile p that frees up first
                heap = free_heaps[p]
                while heap and heap[0][0] != timelines[heap[0][1]].ends[-1]:
                    heappop(heap)   # stale: that worker took a later task since
                if heap:
                    end, w = heap[0]
                    s = R if R > end else end
                    f = s + d
                    if f < best_f:
                        best_f, best_w, best_s = f, w, s
        return best_w, best_s, best_f

    def result(self, order: Sequence[str], where: list[int], start: list[float], finish: list[float]) -> HeftResult:
        ids, n = self.worker_ids, len(order)
        return HeftResult(worker_of={order[i]: ids[where[i]] for i in range(n)},
                          worker_profile={ids[w]: self.profiles[self.worker_prof[w]] for w in range(len(ids))},
                          sequence={ids[w]: [order[i] for i in self.timelines[w].tasks] for w in range(len(ids))},
                          start_s={order[i]: start[i] for i in range(n)},
                          finish_s={order[i]: finish[i] for i in range(n)},
                          makespan_s=max(finish) if n else 0.0)
