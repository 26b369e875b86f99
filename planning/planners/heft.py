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

Workers form one pool per profile (bounded or unbounded; the candidates searched and
when that search is exact): :mod:`planning.planners.heft_pools`.

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

from heapq import heappush
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from planning.errors import PlanError
from planning.gcpause import paused_gc
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.planners.heft_pools import HeftResult, WorkerPools, pool_sizes
from planning.profiles import Catalog
from planning.schedule import ScheduleEvaluator
from planning.sla import SLA
from planning.workflow import Workflow

if TYPE_CHECKING:
    from planning.costs.cost_model import CostModel


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
    n, m = len(order), len(profiles)
    exec_arr = _checked_exec(exec_s, profiles, n)
    counts = pool_sizes(workers_per_profile, m)
    boot = _checked_startups(startup_s, m)
    parents, children = _edges(workflow, order, comm_s)
    allowed = _checked_allowed(allowed, order, m)
    prio = _priority_order(children, exec_arr, allowed)
    ex = (exec_arr if allowed is None else np.where(allowed, exec_arr, np.inf)).tolist()  # inf: never the EFT
    pools = WorkerPools(profiles, counts, boot)
    choose = pools.bounded_choice if pools.bounded else pools.unbounded_choice
    timelines, worker_prof, free_heaps, track_free = pools.timelines, pools.worker_prof, pools.free_heaps, pools.track_free
    where = [-1] * n
    start = [0.0] * n
    finish = [0.0] * n
    for i in prio.tolist():
        ready, ready_of = _data_ready(parents[i], where, finish)
        best_w, best_s, best_f = choose(ex[i], ready, ready_of)
        if best_w < 0:          # a fresh worker of profile -1 - best_w
            best_w = pools.new_worker(-1 - best_w)
        line = timelines[best_w]
        last_end = line.ends[-1] if line.ends else None
        line.add(best_s, best_f, i)
        if track_free and line.ends[-1] != last_end:
            heappush(free_heaps[worker_prof[best_w]], (line.ends[-1], best_w))
        where[i] = best_w
        start[i] = best_s
        finish[i] = best_f
    return pools.result(order, where, start, finish)


def _checked_exec(exec_s: np.ndarray, profiles: list[str], n: int) -> np.ndarray:
    """The execution-time matrix (tasks x profiles), checked: a ValueError names what is wrong."""
    m = len(profiles)
    exec_arr = np.asarray(exec_s, dtype=float)
    if exec_arr.shape != (n, m):
        raise ValueError(f"exec_s has shape {exec_arr.shape}, expected ({n}, {m}) = (tasks, profiles)")
    if m == 0:
        raise ValueError("profiles is empty")
    if len(set(profiles)) != m:
        raise ValueError("profiles must be distinct")
    if not np.all(np.isfinite(exec_arr)) or np.any(exec_arr < 0):
        raise ValueError("exec_s must be finite and >= 0")
    return exec_arr


def _checked_startups(startup_s: Sequence[float] | None, m: int) -> list[float]:
    boot = [0.0] * m if startup_s is None else [float(x) for x in startup_s]
    if len(boot) != m or not all(0.0 <= x < float("inf") for x in boot):
        raise ValueError(f"startup_s must give one finite start-up >= 0 per profile ({m})")
    return boot


def _edges(workflow: Workflow, order: Sequence[str],
           comm_s: Callable[[str, str], float] | Mapping[tuple[str, str], float],
           ) -> tuple[list[list[tuple[int, float]]], list[list[tuple[int, float]]]]:
    """Parents and children of each task as (index, communication seconds), the cost computed once per edge."""
    if isinstance(comm_s, Mapping):
        table = comm_s
        comm: Callable[[str, str], float] = lambda t, c: table[(t, c)]  # noqa: E731
    else:
        comm = comm_s
    index = workflow.index()
    n = len(order)
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
    return parents, children


def _checked_allowed(allowed: np.ndarray | None, order: Sequence[str], m: int) -> np.ndarray | None:
    if allowed is None:
        return None
    n = len(order)
    allowed = np.asarray(allowed, dtype=bool)
    if allowed.shape != (n, m):
        raise ValueError(f"allowed has shape {allowed.shape}, expected ({n}, {m}) = (tasks, profiles)")
    if not allowed.any(axis=1).all():
        raise ValueError(f"task {order[int(np.argmin(allowed.any(axis=1)))]!r} is allowed on no profile")
    return allowed


def _priority_order(children: list[list[tuple[int, float]]], exec_arr: np.ndarray,
                    allowed: np.ndarray | None) -> np.ndarray:
    """Task indices by upward rank, highest first (ties: earlier topological index first)."""
    n = len(children)
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
    return np.lexsort((np.arange(n), -np.asarray(rank)))  # rank desc, then topo index asc


def _data_ready(parents: list[tuple[int, float]], where: list[int],
                finish: list[float]) -> tuple[float, dict[int, float]]:
    """When a task's inputs are ready: on any worker hosting none of its parents, and per worker hosting some."""
    R = 0.0
    same: dict[int, float] = {}   # worker -> max finish of parents on it
    arr: dict[int, float] = {}    # worker -> max arrival elsewhere of parents on it
    for pi, cost in parents:
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
    return R, ready_of


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

    # a cold call on a freshly built workflow builds its topology and many lists: the collector's walks of the
    # heap are waste (x1.5 at 10k tasks)
    @paused_gc()
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
