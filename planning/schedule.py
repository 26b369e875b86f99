"""The analytical schedule: when each task would run under a given assignment.

Every planner times its assignment with :func:`evaluate_schedule`, so planned
times follow the same worker protocol the simulator and executor interpret:

* a worker runs its tasks one at a time, strictly in its planned order;
* a task is *ready* when every parent is done (plus one coordination round trip
  per counter update); it reaches its worker after an invocation latency when the
  parent that made it ready ran elsewhere (or, for roots, was the client);
* a worker's first task pays the start-up of its profile (a cold start);
* inputs produced on other workers are downloaded in parallel (the phase lasts as
  long as the largest download); inputs produced locally are free;
* an output is uploaded only when a consumer runs on another worker, or it is a
  sink (the client fetches sinks' results); the upload size is the task's largest
  out-edge (its ``output_bytes`` hint for sinks);
* the makespan runs from submission to the client holding the last sink's result.

With zero overheads and free transfers this is the classic list-schedule
recurrence ``start = max(parents' finish, worker free)``.  Cost: O(n + e).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from planning.billing import BilledWorkers
from planning.errors import PlanError
from planning.profiles import Catalog
from planning.workflow import Workflow

TransferFn = Callable[[float, str], float]


def free_transfer(nbytes: float, direction: str) -> float:
    """Transfers that take no time (unlimited bandwidth, no latency)."""
    return 0.0


@dataclass(frozen=True)
class ScheduleResult(BilledWorkers):
    """Per-task phase times (a DataFrame indexed by task id), makespan, per-worker spans and cost."""

    tasks: pd.DataFrame
    workers: pd.DataFrame
    makespan_s: float


def upload_bytes(workflow: Workflow, task_id: str) -> float:
    """Size of a task's stored output: its largest out-edge, or its hint for a sink."""
    sizes = [workflow.edge_bytes(task_id, c) for c in workflow.children(task_id)]
    if sizes:
        return float(max(sizes))
    return float(workflow.task(task_id).output_bytes or 0)


def execution_order(workflow: Workflow, sequence: Mapping[str, list[str]]) -> list[str]:
    """A topological order of the DAG plus each worker's sequence edges.

    Raises :class:`PlanError` when a worker's order contradicts the dependencies
    (the plan would deadlock).
    """
    index = workflow.index()
    succ: dict[str, list[str]] = {t: workflow.children(t) for t in index}
    indeg = {t: workflow.graph.in_degree(t) for t in index}
    for w, tasks in sequence.items():
        for a, b in zip(tasks, tasks[1:]):
            succ[a].append(b)
            indeg[b] += 1
    ready = [t for t in index if indeg[t] == 0]
    order: list[str] = []
    while ready:
        t = ready.pop()
        order.append(t)
        for c in succ[t]:
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
    if len(order) != len(index):
        stuck = sorted(t for t in index if indeg[t] > 0)[:5]
        raise PlanError(f"the workers' task order contradicts the dependencies (stuck at {', '.join(stuck)})",
                        "order each worker's tasks consistently with a topological order")
    return order


def evaluate_schedule(workflow: Workflow, worker_of: Mapping[str, str], worker_profile: Mapping[str, str],
                      exec_s: Mapping[str, float], catalog: Catalog, *,
                      sequence: Mapping[str, list[str]] | None = None,
                      transfer_s: TransferFn = free_transfer, startup_s: Callable[[str], float] = lambda p: 0.0,
                      invoke_s: float = 0.0, coordination_s: float = 0.0) -> ScheduleResult:
    """Time an assignment of tasks to workers (and workers to profiles).

    ``sequence`` gives each worker's task order; by default the topological order.
    ``exec_s`` is each task's execution seconds on its assigned profile.
    """
    index = workflow.index()
    missing = [t for t in index if t not in worker_of]
    if missing:
        raise PlanError(f"{len(missing)} task(s) have no worker, e.g. {missing[0]!r}", "assign every task to a worker")
    if sequence is None:
        seq: dict[str, list[str]] = {}
        for t in index:
            seq.setdefault(worker_of[t], []).append(t)
    else:
        seq = {w: list(ts) for w, ts in sequence.items()}
    order = execution_order(workflow, seq)
    prev_on_worker = {b: a for ts in seq.values() for a, b in zip(ts, ts[1:])}
    rows: dict[str, dict[str, float]] = {}
    for t in order:
        w = worker_of[t]
        parents = workflow.parents(t)
        if parents:
            last = max(parents, key=lambda p: (rows[p]["done_s"], index[p]))
            ready = rows[last]["done_s"] + coordination_s
            arrival = ready + (invoke_s if worker_of[last] != w else 0.0)
        else:
            ready, arrival = 0.0, invoke_s
        prev = prev_on_worker.get(t)
        if prev is None:
            worker_start = arrival
            startup = float(startup_s(worker_profile[w]))
            begin = worker_start + startup
        else:
            worker_start = rows[prev]["done_s"]
            startup = 0.0
            begin = max(arrival, worker_start)
        remote = [p for p in parents if worker_of[p] != w]
        download = max((transfer_s(float(workflow.edge_bytes(p, t)), "download") for p in remote), default=0.0)
        in_bytes = float(sum(workflow.edge_bytes(p, t) for p in parents))
        exec_end = begin + download + float(exec_s[t])
        children = workflow.children(t)
        store = not children or any(worker_of[c] != w for c in children)
        out = upload_bytes(workflow, t)
        upload = transfer_s(out, "upload") if store else 0.0
        rows[t] = {"worker": w, "profile": worker_profile[w], "cold_start": prev is None, "startup_s": startup,
                   "ready_s": ready, "worker_start_s": worker_start, "download_start_s": begin,
                   "download_end_s": begin + download, "exec_start_s": begin + download, "exec_end_s": exec_end,
                   "upload_start_s": exec_end, "upload_end_s": exec_end + upload, "done_s": exec_end + upload,
                   "input_bytes": in_bytes, "output_bytes": out, "stored": store}
    tasks = pd.DataFrame.from_dict(rows, orient="index").loc[list(index)]
    tasks.index.name = "task_id"
    sinks = workflow.sinks()
    makespan = max(rows[s]["done_s"] + transfer_s(upload_bytes(workflow, s), "download") for s in sinks)
    spans = tasks.groupby("worker").agg(profile=("profile", "first"), start_s=("worker_start_s", "min"),
                                        stop_s=("done_s", "max"), tasks=("done_s", "size"))
    spans["busy_s"] = (tasks["done_s"] - tasks["download_start_s"]).groupby(tasks["worker"]).sum()
    lifetime = (spans["stop_s"] - spans["start_s"]).to_numpy()
    spans["gb_s"] = lifetime * np.array([catalog[p].memory_gb for p in spans["profile"]])
    spans["cost"] = lifetime * np.array([catalog[p].price_per_s for p in spans["profile"]])
    return ScheduleResult(tasks, spans.reset_index(), float(makespan))
