"""A plan compiled once for many simulations: protocol, topology arrays, durations.

Monte Carlo and calibration simulate one (workflow, plan) hundreds of times with
different durations or platforms; everything that does not change between those
runs is computed here, once: the worker protocol, per-task index arrays, the
cost model's estimates at the plan's SLA, and the noise the cost model gives
transfers and start-ups (for sampled runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from planning.errors import PlanError
from planning.protocol import Invocation, WorkerProtocol, dynamic_worker_id
from planning.workflow import Workflow


def _canonical_rows(workflow: Workflow, plan: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Each plan row's task id and worker as *one shared string object per name*, the task ids being the
    workflow's own.  A plan's ids come out of pandas as fresh strings, whose every dict look-up hashes
    and compares them again; with the workflow's objects look-ups hit the identity fast path (x2 at
    100k tasks).  None when the plan's rows are not exactly the workflow's tasks (then nothing changes)."""
    tasks = plan.tasks
    ids = workflow.topological_order()
    if len(tasks) != len(ids) or len(ids) == 0:
        return None
    pos = pd.Index(list(ids), dtype=object).get_indexer(tasks.index.to_numpy(object))
    if (pos < 0).any() or (np.bincount(pos, minlength=len(ids)) != 1).any():
        return None
    codes, uniques = pd.factorize(tasks["worker"].to_numpy(object))
    if (codes < 0).any():
        return None
    ids_arr = np.empty(len(ids), dtype=object)
    ids_arr[:] = ids
    return ids_arr[pos], np.asarray(uniques, dtype=object)[codes]


def plan_sequence(plan: Any, rows: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, list[str]]:
    """:meth:`Plan.sequence` (tasks by planned start, stable), computed with numpy for large plans.

    ``rows``: the plan rows' ids and workers as :func:`_canonical_rows` gives them (same values)."""
    tasks = plan.tasks
    order = np.lexsort((tasks["download_start_s"].to_numpy(float), tasks["exec_start_s"].to_numpy(float)))
    if rows is None:
        ids = tasks.index.to_numpy(object)[order]
        workers = tasks["worker"].to_numpy(object)[order]
    else:
        ids, workers = rows[0][order], rows[1][order]
    seq: dict[str, list[str]] = {}
    for w, t in zip(workers.tolist(), ids.tolist()):
        lst = seq.get(w)
        if lst is None:
            seq[w] = [t]
        else:
            lst.append(t)
    return seq


def protocol_for(workflow: Workflow, plan: Any) -> WorkerProtocol:
    """The plan's :class:`WorkerProtocol` (what ``WorkerProtocol.for_plan`` builds, faster for large plans)."""
    rows = _canonical_rows(workflow, plan)
    if rows is None:
        worker_of = dict(zip(plan.tasks.index.tolist(), plan.tasks["worker"].tolist()))
    else:
        worker_of = dict(zip(rows[0].tolist(), rows[1].tolist()))
    return WorkerProtocol(workflow, worker_of, plan.worker_profile, plan_sequence(plan, rows), dynamic=plan.dynamic)


@dataclass
class Noise:
    """Mean-one ratios the cost model gives transfers and start-ups (for sampled runs)."""

    download: np.ndarray
    upload: np.ndarray
    cold: np.ndarray
    warm: np.ndarray


class CompiledModel:
    """Everything about one (workflow, plan, cost model) that simulations share.

    ``durations`` (seconds per task id, or an array in topological order) replaces
    the cost model's execution times, e.g. recorded runtimes when replaying a real
    execution; they are used as given, deterministic or not.
    """

    def __init__(self, workflow: Workflow, plan: Any, cost_model: Any, *, protocol: WorkerProtocol | None = None,
                 durations: Mapping[str, float] | Sequence[float] | np.ndarray | None = None) -> None:
        if plan.structure_hash != workflow.structure_hash():
            raise PlanError(f"plan {plan.planner!r} was made for another workflow ({plan.workflow_name!r})",
                            "simulate the plan with the workflow it was made for")
        self.workflow = workflow
        self.plan = plan
        self.cost_model = cost_model
        self.protocol = protocol if protocol is not None else protocol_for(workflow, plan)
        self.ids: list[str] = list(workflow.topological_order())
        self.index: dict[str, int] = workflow.index()
        n = len(self.ids)
        self.n = n
        graph = workflow.graph
        pred, nodes = graph._pred, graph._node
        self.indegree = [len(pred[t]) for t in self.ids]
        children = self.protocol.children
        self.children_ids: list[list[str]] = [children(t) for t in self.ids]
        self.kinds = [nodes[t]["task"].kind for t in self.ids]
        self.in_bytes = [float(sum([a["bytes"] for a in pred[t].values()])) if pred[t] else 0.0 for t in self.ids]
        self.sinks = [i for i in range(n) if not self.children_ids[i]]
        self.sink_bytes = {i: float(self.protocol.output_bytes(self.ids[i])) for i in self.sinks}
        catalog = plan.catalog
        self.catalog = catalog
        self.price = {p.name: float(p.price_per_s) for p in catalog}
        self.memory_mb = {p.name: float(p.memory_mb) for p in catalog}
        self.cpus = {p.name: float(p.cpus) for p in catalog}
        self.estimates = cost_model.estimate_workflow(workflow, catalog, plan.sla)
        self.column = {name: j for j, name in enumerate(self.estimates.profiles)}
        if self.estimates.task_ids != self.ids:
            raise PlanError("the cost model's estimates are not in the workflow's topological order",
                            "estimate the workflow it was planned for")
        # each task's planned profile (dynamic plans: the profile every new worker takes)
        if plan.dynamic:
            planned = [self.protocol.profile_of(dynamic_worker_id(t)) for t in self.ids]
        else:
            worker_of, profile_of = self.protocol.worker_of, self.protocol.profile_of
            planned = [profile_of(worker_of[t]) for t in self.ids]
        self.planned_profile = planned
        self.planned_column = np.array([self.column[p] for p in planned], dtype=np.int64)
        self.exec_at_sla = self.estimates.exec_s[np.arange(n), self.planned_column]
        self.durations: np.ndarray | None = None
        if durations is not None:
            self.durations = _as_array(durations, self.ids)
        self._noise: Noise | None = None
        self._static: StaticTables | None = None

    def static_tables(self) -> "StaticTables | None":
        """The base protocol's decisions on a static plan, precomputed (None when they may vary at run time).

        With the unmodified :class:`WorkerProtocol` and a static plan every decision is a
        function of the topology alone: a task's inputs from parents planned on its own
        worker are in memory (the worker ran them before, or the run stalls), the others
        are fetched; whether the output is stored; where each child runs.  They are computed
        once per plan (:class:`StaticTables`, checked against the hooks by a test), so the run
        does array look-ups instead.  A
        protocol subclass (an optimization) or a dynamic plan keeps the per-task hooks.
        """
        proto = self.protocol
        if type(proto) is not WorkerProtocol or proto.dynamic:
            return None
        if self._static is None:
            self._static = StaticTables(self)
        return self._static

    def exec_deterministic(self) -> np.ndarray:
        """Execution seconds per task at the plan's SLA on its planned profile (or the given durations)."""
        return self.durations if self.durations is not None else self.exec_at_sla

    def exec_on(self, i: int, profile: str, sampled_ratio: float | None) -> float:
        """Seconds of task ``i`` on another profile than planned (an overridden ``handle_execution``)."""
        if self.durations is not None:
            return float(self.durations[i])
        j = self.column[profile]
        if sampled_ratio is None:
            return float(self.estimates.exec_s[i, j])
        return float(self.estimates.base_exec_s[i, j] * sampled_ratio)

    def noise(self) -> Noise:
        if self._noise is None:
            cm = self.cost_model
            self._noise = Noise(np.asarray(cm.transfer_distribution(1.0, "download").ratios, float),
                                np.asarray(cm.transfer_distribution(1.0, "upload").ratios, float),
                                np.asarray(cm.startup_distribution("*", True).ratios, float),
                                np.asarray(cm.startup_distribution("*", False).ratios, float))
        return self._noise


class StaticTables:
    """Per-task decisions of the base protocol on a static plan (see :meth:`CompiledModel.static_tables`).

    Built from the adjacency exactly as :class:`WorkerProtocol`'s hooks decide (a test
    checks they agree): fetch every parent planned on another worker (in parent order),
    store when a child is planned elsewhere or the task is a sink, and for each child
    (in index order) whether it runs here, its worker, and whether it starts that worker.
    """

    def __init__(self, model: "CompiledModel") -> None:
        proto, ids, index = model.protocol, model.ids, model.index
        worker_of = proto.worker_of
        first_of = proto._first_of
        workers = [worker_of[t] for t in ids]
        self.worker = workers
        self.profile = {w: proto.profile_of(w) for w in set(workers) | set(proto.sequence)}
        self.sequence = {w: [index[t] for t in ts] for w, ts in proto.sequence.items()}
        graph = model.workflow.graph
        pred = graph._pred
        fetch: list[list[float]] = []
        store: list[bool] = []
        out_bytes: list[float] = []
        downstream: list[list[tuple[int, bool, str, bool]]] = []
        initial = []
        for t, w, kids in zip(ids, workers, model.children_ids):
            in_edges = pred[t]
            if in_edges:   # the parents in WorkerProtocol.parents order, with their edge sizes
                fetch.append([float(a["bytes"]) for p, a in in_edges.items() if worker_of[p] != w])
            else:
                fetch.append([])
                initial.append(t)
            out_bytes.append(proto.output_bytes(t))
            if kids:
                here = [(index[c], worker_of[c]) for c in kids]
                store.append(any([cw != w for _, cw in here]))
                downstream.append([(j, cw == w, cw, first_of.get(c) == cw) for c, (j, cw) in zip(kids, here)])
            else:
                store.append(True)
                downstream.append([])
        self.fetch = fetch
        self.store = store
        self.out_bytes = out_bytes
        self.downstream = downstream
        #: what WorkerProtocol.initial_invocations returns: each root to its worker, in index order
        self.initial = [Invocation(worker_of[r], r, first_of.get(r) == worker_of[r]) for r in initial]


def _as_array(durations: Mapping[str, float] | Sequence[float] | np.ndarray, ids: list[str]) -> np.ndarray:
    if isinstance(durations, Mapping):
        missing = [t for t in ids if t not in durations]
        if missing:
            raise PlanError(f"durations lack {len(missing)} task(s), e.g. {missing[0]!r}",
                            "give a duration for every task")
        arr = np.array([float(durations[t]) for t in ids])
    else:
        arr = np.asarray(durations, dtype=float)
        if arr.shape != (len(ids),):
            raise PlanError(f"durations have shape {arr.shape}, the workflow has {len(ids)} tasks",
                            "give one duration per task in topological order")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise PlanError("durations must be finite seconds >= 0", "fix the negative or missing durations")
    return arr
