"""A plan compiled once for many simulations: protocol, topology arrays, durations.

Monte Carlo and calibration simulate one (workflow, plan) hundreds of times with
different durations or platforms; everything that does not change between those
runs is computed here, once: the plan's placement over the workflow's
:class:`~planning.topology.Topology`, the base protocol's per-task decisions
(:class:`StaticTables`) or the protocol itself (built only when its hooks are
needed), the cost model's estimates at the plan's SLA, and the noise the cost
model gives transfers and start-ups (for sampled runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from planning.errors import PlanError
from planning.protocol import Invocation, WorkerProtocol, dynamic_worker_id
from planning.topology import Topology, segments
from planning.workflow import Workflow


class Placement:
    """A static plan's placement as arrays over the workflow's topological positions.

    ``worker_code[i]`` indexes ``workers`` (names); ``sequence[w]`` is worker ``w``'s
    tasks in planned start order (what :meth:`Plan.sequence` gives: by execution start,
    then download start, ties in plan-row order); ``first[i]`` says task ``i`` opens its
    worker's sequence.  Built with numpy in O(n log n), for 100k-task plans.
    """

    def __init__(self, topology: Topology, plan: Any) -> None:
        tasks = plan.tasks
        n = topology.n
        pos = pd.Index(topology.ids, dtype=object).get_indexer(pd.Index(tasks.index.to_numpy(object), dtype=object))
        if len(pos) != n or (pos < 0).any() or (np.bincount(pos, minlength=n) != 1).any():
            raise PlanError(f"plan {plan.planner!r} does not place exactly the workflow's tasks",
                            "simulate the plan with the workflow it was made for")
        codes, uniques = pd.factorize(tasks["worker"].to_numpy(object))
        self.workers: list[str] = [str(w) for w in uniques]
        code = np.empty(n, dtype=np.int64)
        code[pos] = codes
        self.worker_code = code
        order = np.lexsort((tasks["download_start_s"].to_numpy(float), tasks["exec_start_s"].to_numpy(float)))
        grouped = order[np.argsort(codes[order], kind="stable")]        # by worker, planned order within
        per_worker = segments(pos[grouped].tolist(), np.bincount(codes, minlength=len(uniques)))
        self.sequence: dict[str, list[int]] = dict(zip(self.workers, per_worker))
        first = np.zeros(n, dtype=bool)
        first[[seq[0] for seq in self.sequence.values() if seq]] = True
        self.first = first
        worker_profile = plan.worker_profile          # (a property that builds a dict: read it once)
        default = next(iter(worker_profile.values()), "")
        self.profile: dict[str, str] = {w: worker_profile.get(w, default) for w in self.workers}

    def worker_names(self) -> list[str]:
        """Each task's worker (topological order)."""
        names = np.asarray(self.workers, dtype=object)
        return names[self.worker_code].tolist()


def protocol_for(workflow: Workflow, plan: Any, placement: Placement | None = None) -> WorkerProtocol:
    """The plan's :class:`WorkerProtocol` (what ``WorkerProtocol.for_plan`` builds, faster for large plans)."""
    if placement is None or plan.dynamic:
        return WorkerProtocol.for_plan(workflow, plan)
    ids = workflow.topology().ids
    sequence = {w: [ids[i] for i in seq] for w, seq in placement.sequence.items()}
    return WorkerProtocol(workflow, dict(zip(ids, placement.worker_names())), plan.worker_profile, sequence,
                          dynamic=False)


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
    execution; they are used as given, deterministic or not.  ``protocol`` replaces
    the plan's own :class:`WorkerProtocol` (e.g. a subclass with an optimization).
    """

    def __init__(self, workflow: Workflow, plan: Any, cost_model: Any, *, protocol: WorkerProtocol | None = None,
                 durations: Mapping[str, float] | Sequence[float] | np.ndarray | None = None) -> None:
        if plan.structure_hash != workflow.structure_hash():
            raise PlanError(f"plan {plan.planner!r} was made for another workflow ({plan.workflow_name!r})",
                            "simulate the plan with the workflow it was made for")
        self.workflow = workflow
        self.plan = plan
        self.cost_model = cost_model
        topology = workflow.topology()
        self.topology = topology
        self.placement = None if plan.dynamic else Placement(topology, plan)
        self._protocol = protocol
        self.ids: list[str] = list(topology.ids)
        self.index: dict[str, int] = topology.index
        n = len(self.ids)
        self.n = n
        self.indegree: list[int] = topology.indegree.tolist()
        self.kinds = topology.kinds
        #: tasks whose kind keeps its whole CPU quota busy (a cost model without that notion: none)
        threaded = getattr(cost_model, "threaded", None)
        self.threaded = threaded(self.kinds) if threaded is not None else np.zeros(n, bool)
        self.in_bytes = topology.in_bytes
        self.sinks: list[int] = topology.sinks
        self.sink_bytes = {i: float(topology.out_bytes[i]) for i in self.sinks}
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
        if self.placement is not None:
            placement = self.placement
            by_worker = [self.column[placement.profile[w]] for w in placement.workers]
            self.planned_column = np.asarray(by_worker, dtype=np.int64)[placement.worker_code]
            names = np.asarray(self.estimates.profiles, dtype=object)
            self.planned_profile: list[str] = names[self.planned_column].tolist()
        else:
            proto = self.protocol
            self.planned_profile = [proto.profile_of(dynamic_worker_id(t)) for t in self.ids]
            self.planned_column = np.array([self.column[p] for p in self.planned_profile], dtype=np.int64)
        self.exec_at_sla = self.estimates.exec_s[np.arange(n), self.planned_column]
        self.durations: np.ndarray | None = None
        if durations is not None:
            self.durations = _as_array(durations, self.ids)
        self._noise: Noise | None = None
        self._static: StaticTables | None = None
        self._staging: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def protocol(self) -> WorkerProtocol:
        """The protocol the run interprets: the one given, else the plan's (built on first use)."""
        if self._protocol is None:
            self._protocol = protocol_for(self.workflow, self.plan, self.placement)
        return self._protocol

    @cached_property
    def children_ids(self) -> list[list[str]]:
        """Each task's children as ids, ascending (for the per-task hooks)."""
        ids = self.ids
        return [[ids[c] for c in kids] for kids in self.topology.children]

    def static_tables(self) -> "StaticTables | None":
        """The base protocol's decisions on a static plan, precomputed (None when they may vary at run time).

        With the plan's own, unmodified :class:`WorkerProtocol` every decision is a
        function of the topology and the placement: a task's inputs from parents planned
        on its own worker are in memory (the worker ran them before, or the run stalls),
        the others are fetched; whether the output is stored; where each child runs.
        They are computed once per plan (:class:`StaticTables`, checked against the hooks
        by a test), so the run does array look-ups instead.  A given protocol (e.g. a
        subclass with an optimization) or a dynamic plan keeps the per-task hooks.
        """
        if self.placement is None or self._protocol is not None:
            return None
        if self._static is None:
            self._static = StaticTables(self.topology, self.placement)
            if self._staging is not None:
                self._static.stage_around(*self._staging)
        return self._static

    def stage_around(self, stage_in: np.ndarray, stage_out: np.ndarray) -> None:
        """Bytes the workflow system stages before (``stage_in``) and after (``stage_out``) each task.

        For replays of real executions (the ``recorded`` plan): a task's external inputs
        move like a fetch before it runs, and everything it writes is stored after it, so
        both pass through the platform's serial stager (``staging_s_per_GB``) and shared
        storage.  Applies to the static tables only (a given protocol decides its own moves).
        """
        self._staging = (np.asarray(stage_in, float), np.asarray(stage_out, float))
        if self._static is not None:
            self._static.stage_around(*self._staging)

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

    Derived, with array operations over the edges, from the rules of
    :class:`WorkerProtocol`'s hooks (a test checks they agree task by task):

    * ``fetch[i]``: the bytes of each in-edge whose parent is planned on another
      worker, in parent order (``handle_inputs``);
    * ``store[i]``: a child is planned on another worker, or the task is a sink
      (``handle_output``); ``out_bytes[i]`` the size stored;
    * ``downstream[i]``: per child, ascending, ``(position, runs here, its worker,
      starts that worker)`` (``handle_downstream``);
    * ``initial``: the roots' invocations (``initial_invocations``); ``sequence`` and
      ``profile``: each worker's planned task positions and its profile; ``worker``:
      each task's worker (names), and the ``placement`` they come from.
    """

    def __init__(self, topology: Topology, placement: Placement) -> None:
        n = topology.n
        code = placement.worker_code
        names = np.asarray(placement.workers, dtype=object)
        self.worker: list[str] = placement.worker_names()
        self.profile = placement.profile
        self.sequence = placement.sequence
        self.placement = placement
        parent, child, nbytes = topology.edge_parent, topology.edge_child, topology.edge_bytes
        elsewhere = code[parent] != code[child]
        # fetch: the cross-worker in-edges, still grouped by child in parent order
        self.fetch: list[list[float]] = segments(nbytes[elsewhere].tolist(), np.bincount(child[elsewhere], minlength=n))
        #: the same without empty inputs (nothing to move): what goes through storage
        self.fetch_sized: list[list[float]] = [f if 0.0 not in f else [b for b in f if b > 0] for f in self.fetch]
        stored = np.bincount(parent[elsewhere], minlength=n) > 0
        self.store: list[bool] = (stored | (topology.out_degree == 0)).tolist()
        self.out_bytes: list[float] = topology.out_bytes.tolist()
        # downstream: every edge ordered by (parent, child), cut per parent
        by_parent = topology.edge_by_parent
        kid = child[by_parent]
        here = ~elsewhere[by_parent]
        rows = list(zip(kid.tolist(), here.tolist(), names[code[kid]].tolist(), placement.first[kid].tolist()))
        self.downstream: list[list[tuple[int, bool, str, bool]]] = segments(rows, topology.out_degree)
        ids, first = topology.ids, placement.first
        #: what WorkerProtocol.initial_invocations returns: each root to its worker, in index order
        self.initial = [Invocation(self.worker[r], ids[r], bool(first[r])) for r in topology.roots]


    def stage_around(self, stage_in: np.ndarray, stage_out: np.ndarray) -> None:
        """Add staged bytes: ``stage_in[i]`` fetched before task ``i``, ``stage_out[i]`` stored after it."""
        for i in np.flatnonzero(stage_in > 0).tolist():
            self.fetch[i] = [*self.fetch[i], float(stage_in[i])]
            self.fetch_sized[i] = [*self.fetch_sized[i], float(stage_in[i])]
        for i in np.flatnonzero(stage_out > 0).tolist():
            self.store[i] = True
            self.out_bytes[i] = max(self.out_bytes[i], float(stage_out[i]))


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
