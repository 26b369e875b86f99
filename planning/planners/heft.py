"""``heft``: Heterogeneous Earliest Finish Time with insertion, the algorithm and the planner around it.

Pools of workers per profile: ``workers_per_profile`` each (bounded), or
unbounded as on a serverless platform (``None``, the default), or sized to the
host the plan will run on: ``host_cores`` (a number, or ``"local"`` for this
machine) gives each profile ``max(1, floor(host_cores / cpus))`` workers, so no
profile's pool asks for more CPUs at once than the host has.  Communication
between different workers is the cost model's upload of the parent's output plus
the child's download of the edge, at the SLA (computed for every edge at once);
a worker's first task pays the profile's cold start-up at the SLA.  HEFT's own
timeline (communication that does not occupy workers) is kept in the notes; the
plan's times are the shared protocol's schedule of HEFT's assignment and
per-worker order, so they are comparable with every other planner and with the
simulator.

The algorithm: HEFT (Topcuoglu et al. 2002) with insertion, :func:`heft`.

A pure function over a :class:`~planning.workflow.Workflow`, an execution-time
matrix ``exec_s[i, j]`` (task ``topological_order()[i]`` on profile ``profiles[j]``)
and a communication cost ``comm_s(parent, child)`` (a function, or a mapping of
``(parent, child)`` to seconds - much faster when a cost model can compute every
edge at once) charged only when parent and child run on different workers
(communication does not occupy workers).

Cold starts: ``startup_s[j]`` (default zero) is the start-up of a worker of
profile ``j``.  A worker's first task - on an empty worker, or inserted before
its first busy interval - starts no earlier than its data-ready time plus the
start-up, as in the analytical schedule (:mod:`planning.schedule`), where a
worker is started when its first task is ready.  With zero start-up this is
classic HEFT (and the cross-check against anrg-saga, which has no start-up,
holds).

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

Priorities: upward rank with the mean execution time over profiles and the
communication cost ``comm_s(p, c)`` as the mean edge cost; ties broken by the
topological index (earlier first), which keeps the order a topological order.
Worker choice: minimal earliest finish time with insertion into idle gaps; ties go
to the first candidate in profile order, then worker number.  Deterministic: no
set or hash order is used.

Costs (n tasks, e edges, W candidate workers per task): O(e) calls of ``comm_s``,
O(e + n log n) for ranks and order, O(e + n * W * (log n + g)) for placement where
g is the number of too-small gaps skipped after the bisection (small in practice).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from planning.errors import PlanError
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.profiles import Catalog
from planning.schedule import ScheduleEvaluator
from planning.sla import SLA
from planning.workflow import Workflow

if TYPE_CHECKING:
    from planning.costs.cost_model import CostModel


@dataclass(frozen=True)
class HeftResult:
    worker_of: dict[str, str]          # task id -> worker id
    worker_profile: dict[str, str]     # worker id -> profile name
    sequence: dict[str, list[str]]     # worker id -> its tasks in start-time order
    start_s: dict[str, float]
    finish_s: dict[str, float]
    makespan_s: float                  # HEFT's own model: max finish


class _Timeline:
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


def _pool_sizes(workers_per_profile: int | Sequence[int] | None, m: int) -> list[int] | None:
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


def heft(workflow: Workflow, exec_s: np.ndarray, profiles: list[str],
         comm_s: Callable[[str, str], float] | Mapping[tuple[str, str], float],
         workers_per_profile: int | Sequence[int] | None = None, startup_s: Sequence[float] | None = None,
         allowed: np.ndarray | None = None) -> HeftResult:
    """Schedule ``workflow`` with HEFT (insertion-based); see the module docstring.

    ``allowed`` (tasks x profiles, boolean) restricts where each task may run (e.g.
    profiles with enough memory); ranks then average over a task's allowed profiles.
    ``workers_per_profile``: one pool size for every profile, one per profile (in
    ``profiles``' order, e.g. sized to a host's cores), or None (unbounded).
    """
    order = workflow.topological_order()
    index = workflow.index()
    n, m = len(order), len(profiles)
    exec_arr = np.asarray(exec_s, dtype=float)
    if exec_arr.shape != (n, m):
        raise ValueError(f"exec_s has shape {exec_arr.shape}, expected ({n}, {m}) = (tasks, profiles)")
    if m == 0:
        raise ValueError("profiles is empty")
    if len(set(profiles)) != m:
        raise ValueError("profiles must be distinct")
    if not np.all(np.isfinite(exec_arr)) or np.any(exec_arr < 0):
        raise ValueError("exec_s must be finite and >= 0")
    counts = _pool_sizes(workers_per_profile, m)
    boot = [0.0] * m if startup_s is None else [float(x) for x in startup_s]
    if len(boot) != m or not all(0.0 <= x < float("inf") for x in boot):
        raise ValueError(f"startup_s must give one finite start-up >= 0 per profile ({m})")
    if isinstance(comm_s, Mapping):
        table = comm_s
        comm: Callable[[str, str], float] = lambda t, c: table[(t, c)]  # noqa: E731
    else:
        comm = comm_s

    # ---- graph as index lists, communication costs once per edge
    parents: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    children: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    succ = workflow.graph._succ        # networkx adjacency: read-only, insertion ordered
    for i, t in enumerate(order):
        for c in succ[t]:
            cost = float(comm(t, c))
            if not (cost >= 0.0) or cost == float("inf"):
                raise ValueError(f"comm_s({t!r}, {c!r}) = {cost!r} must be finite and >= 0")
            j = index[c]
            children[i].append((j, cost))
            parents[j].append((i, cost))

    if allowed is not None:
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != (n, m):
            raise ValueError(f"allowed has shape {allowed.shape}, expected ({n}, {m}) = (tasks, profiles)")
        if not allowed.any(axis=1).all():
            raise ValueError(f"task {order[int(np.argmin(allowed.any(axis=1)))]!r} is allowed on no profile")

    # ---- upward rank (reverse topological order) and priority order
    if allowed is None:
        mean_exec = exec_arr.mean(axis=1).tolist()
    else:
        mean_exec = (np.where(allowed, exec_arr, 0.0).sum(axis=1) / allowed.sum(axis=1)).tolist()
    rank = [0.0] * n
    for i in range(n - 1, -1, -1):
        best = 0.0
        for j, cost in children[i]:
            v = cost + rank[j]
            if v > best:
                best = v
        rank[i] = mean_exec[i] + best
    prio = np.lexsort((np.arange(n), -np.asarray(rank)))  # rank desc, then topo index asc

    # ---- placement
    ex = (exec_arr if allowed is None else np.where(allowed, exec_arr, np.inf)).tolist()  # inf: never the EFT
    worker_ids: list[str] = []
    worker_prof: list[int] = []
    timelines: list[_Timeline] = []
    per_profile: list[list[int]] = [[] for _ in range(m)]  # worker indices per profile, in creation order

    def new_worker(p: int) -> int:
        w = len(worker_ids)
        worker_ids.append(f"{profiles[p]}-{len(per_profile[p])}")
        worker_prof.append(p)
        timelines.append(_Timeline())
        per_profile[p].append(w)
        return w

    bounded = counts is not None
    if bounded:
        for p in range(m):
            for _ in range(counts[p]):
                new_worker(p)
        all_workers = list(range(len(worker_ids)))  # profile-major order

    free_heaps: list[list[tuple[float, int]]] = [[] for _ in range(m)]   # per profile: (last finish, worker)
    track_free = not bounded and any(b > 0.0 for b in boot)
    where = [-1] * n
    start = [0.0] * n
    finish = [0.0] * n
    for i in prio.tolist():
        # data-ready times: R on any worker hosting no parent, else per worker
        R = 0.0
        same: dict[int, float] = {}   # worker -> max finish of parents on it
        arr: dict[int, float] = {}    # worker -> max arrival elsewhere of parents on it
        for pi, cost in parents[i]:
            w, f = where[pi], finish[pi]
            a = f + cost
            if a > R:
                R = a
            if w in same:
                if f > same[w]:
                    same[w] = f
                if a > arr[w]:
                    arr[w] = a
            else:
                same[w] = f
                arr[w] = a
        ready_of: dict[int, float] = {}
        if same:
            # top two arrivals by distinct worker, to get max over parents not on w
            b1w, b1, b2 = -1, 0.0, 0.0
            for w, a in arr.items():
                if a > b1:
                    b2, b1, b1w = b1, a, w
                elif a > b2:
                    b2 = a
            for w, s in same.items():
                other = b2 if w == b1w else b1
                ready_of[w] = s if s > other else other

        row = ex[i]
        best_f = float("inf")
        best_w = -1
        best_s = 0.0
        if bounded:
            for w in all_workers:
                p = worker_prof[w]
                d = row[p]
                s = timelines[w].earliest_start(ready_of.get(w, R), d, boot[p])
                f = s + d
                if f < best_f:
                    best_f, best_w, best_s = f, w, s
        else:
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
            if best_w < 0:
                best_w = new_worker(-1 - best_w)
        line = timelines[best_w]
        last_end = line.ends[-1] if line.ends else None
        line.add(best_s, best_f, i)
        if track_free and line.ends[-1] != last_end:
            heappush(free_heaps[worker_prof[best_w]], (line.ends[-1], best_w))
        where[i] = best_w
        start[i] = best_s
        finish[i] = best_f

    worker_of = {order[i]: worker_ids[where[i]] for i in range(n)}
    worker_profile = {worker_ids[w]: profiles[worker_prof[w]] for w in range(len(worker_ids))}
    sequence = {worker_ids[w]: [order[i] for i in timelines[w].tasks] for w in range(len(worker_ids))}
    start_s = {order[i]: start[i] for i in range(n)}
    finish_s = {order[i]: finish[i] for i in range(n)}
    return HeftResult(worker_of=worker_of, worker_profile=worker_profile, sequence=sequence,
                      start_s=start_s, finish_s=finish_s, makespan_s=max(finish) if n else 0.0)


def edge_comm_s(evaluator: ScheduleEvaluator, cost_model, sla) -> dict[tuple[str, str], float]:
    """Seconds to move each edge between two workers: upload of the parent's output plus download of the edge.

    All edges at once (the cost model is vectorised), read from the evaluator's index lists.
    """
    ids, out = evaluator.ids, evaluator.out_bytes
    pairs = [(ids[p], ids[i]) for i, ps in enumerate(evaluator.parents) for p in ps]
    if not pairs:
        return {}
    up = np.atleast_1d(cost_model.transfer_s(
        np.array([out[p] for ps in evaluator.parents for p in ps], dtype=float), "upload", sla))
    down = np.atleast_1d(cost_model.transfer_s(
        np.array([b for sizes in evaluator.in_edge_bytes for b in sizes], dtype=float), "download", sla))
    return dict(zip(pairs, (up + down).tolist()))


def memory_fits(workflow, catalog, profiles: list[str]) -> np.ndarray:
    """tasks x profiles: whether the profile has the memory the task needs (a task fitting none is an error)."""
    need = np.array([float(workflow.task(t).memory_mb or 0.0) for t in workflow.topological_order()])
    have = np.array([catalog[p].memory_mb for p in profiles], dtype=float)
    fits = need[:, None] <= have[None, :]
    if not fits.any(axis=1).all():
        i = int(np.argmin(fits.any(axis=1)))
        raise PlanError(f"task {workflow.topological_order()[i]!r} needs {need[i]:g} MB, more than any profile of "
                        f"catalog {catalog.name!r} has", "add a larger profile to the catalog")
    return fits


@register_planner("heft")
class Heft(Planner):
    """See the module docstring."""

    def __init__(self, *, workers_per_profile: int | None = None, host_cores: float | str | None = None) -> None:
        if workers_per_profile is not None and host_cores is not None:
            raise PlanError("planner 'heft': give workers_per_profile or host_cores, not both",
                            "drop one of the two parameters")
        self.workers_per_profile = workers_per_profile
        self.host_cores = _host_cores(host_cores)

    def plan(self, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA) -> Plan:
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        evaluator = ScheduleEvaluator.for_cost_model(workflow, catalog, cost_model, sla)
        profiles = list(estimates.profiles)
        allowed = memory_fits(workflow, catalog, profiles)
        pools = self.workers_per_profile
        if self.host_cores is not None:
            pools = [max(1, int(self.host_cores // catalog[p].cpus)) for p in profiles]
        result = heft(workflow, estimates.exec_s, profiles, edge_comm_s(evaluator, cost_model, sla),
                      workers_per_profile=pools,
                      startup_s=[evaluator.startup_of(p) for p in profiles], allowed=allowed)
        plan = Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, result.worker_of,
                                    result.worker_profile, planner=self.name, params=self.params,
                                    sequence=result.sequence, evaluator=evaluator)
        plan.notes.append(f"HEFT's own makespan (communication off the workers): {result.makespan_s:.6g} s")
        return plan


def _host_cores(value: float | str | None) -> float | None:
    """``host_cores`` as a number of cores: ``"local"`` is this machine's usable cores."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "local":
        import os

        try:
            return float(len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            return float(os.cpu_count() or 1)
    try:
        cores = float(value)
    except (TypeError, ValueError):
        cores = float("nan")
    if not (cores > 0 and cores != float("inf")):
        raise PlanError(f"planner 'heft': host_cores must be a positive number or 'local', got {value!r}",
                        "e.g. --param host_cores=local or host_cores=2")
    return cores
