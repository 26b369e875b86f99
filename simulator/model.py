"""A plan compiled once for many simulations: the protocol's decisions, topology arrays, durations.

Monte Carlo and calibration simulate one (workflow, plan) hundreds of times with
different durations or platforms; everything that does not change between those
runs is computed here, once: the protocol's decision tables
(:meth:`planning.protocol.WorkerProtocol.compile`; None for a dynamic protocol,
which the run asks live), the cost model's estimates at the plan's SLA (the plan's
own when it was timed with this cost model), and the noise the cost model gives
transfers and start-ups (for sampled runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping, Sequence

import numpy as np

from planning.errors import PlanError
from planning.protocol import DecisionTables, WorkerProtocol, dynamic_worker_id
from planning.workflow import Workflow
from simulator.staging import mark_external


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
        self.protocol: WorkerProtocol = protocol if protocol is not None else WorkerProtocol.for_plan(workflow, plan)
        #: the protocol's decisions (None: a dynamic protocol, asked live by the run)
        self.tables: DecisionTables | None = self.protocol.compile()
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
        self.sink_bytes = dict(zip(self.sinks, np.asarray(topology.out_bytes, dtype=np.float64)[self.sinks].tolist()))
        catalog = plan.catalog
        self.catalog = catalog
        self.price = {p.name: float(p.price_per_s) for p in catalog}
        self.memory_mb = {p.name: float(p.memory_mb) for p in catalog}
        self.cpus = {p.name: float(p.cpus) for p in catalog}
        self.estimates = plan_estimates(plan, cost_model, workflow) or cost_model.estimate_workflow(workflow, catalog, plan.sla)
        self.column = {name: j for j, name in enumerate(self.estimates.profiles)}
        if self.estimates.task_ids != self.ids:
            raise PlanError("the cost model's estimates are not in the workflow's topological order",
                            "estimate the workflow it was planned for")
        # each task's worker's profile (dynamic plans: the profile every new worker takes)
        column = self.column
        if self.tables is not None:
            placement, by_worker = self.tables.placement, self.tables.worker_profile
            per_worker = np.array([column[by_worker[w]] for w in placement.workers], dtype=np.int64)
            self.planned_column = per_worker[placement.worker_code]
            self.planned_profile: list[str] = np.asarray(self.estimates.profiles, dtype=object)[
                self.planned_column].tolist()
        else:
            proto = self.protocol
            self.planned_profile = [proto.profile_of(dynamic_worker_id(t)) for t in self.ids]
            self.planned_column = np.fromiter((column[p] for p in self.planned_profile), dtype=np.int64, count=n)
        #: tasks the compiled protocol executes on another profile than their worker's: (position, profile)
        self.other_profile: list[tuple[int, str]] = [] if self.tables is None or not self.tables.other_profile else [
            (i, used) for i, (used, planned) in enumerate(zip(self.tables.profile, self.planned_profile))
            if used != planned]
        self.exec_at_sla = self.estimates.exec_s[np.arange(n), self.planned_column]
        self.durations: np.ndarray | None = None
        if durations is not None:
            self.durations = _as_array(durations, self.ids)
        self._noise: Noise | None = None
        #: estimates on a CPU count no profile has (a threaded kind on fewer threads), per count
        self._at_cpus_cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    @cached_property
    def children_ids(self) -> list[list[str]]:
        """Each task's children as ids, ascending (for a live protocol's hooks)."""
        ids = self.ids
        return [[ids[c] for c in kids] for kids in self.topology.children]

    def stage_around(self, stage_in: np.ndarray, stage_out: np.ndarray) -> None:
        """Bytes the workflow system stages before (``stage_in``) and after (``stage_out``) each task.

        For replays of real executions (the ``recorded`` plan): a task's external inputs
        move like a fetch before it runs, and everything it writes is stored after it, so
        both pass through the platform's serial stager (``staging_s_per_GB``, plus
        ``stage_in_s_per_GB`` for the external inputs and ``stage_out_s_per_GB`` for what is
        written: :mod:`simulator.staging`) and shared storage.  Applies to compiled
        decisions only (a live protocol decides its own moves).
        """
        if self.tables is not None:
            self.tables = self.tables.staged(np.asarray(stage_in, float), np.asarray(stage_out, float))
            mark_external(self.tables, stage_in)   # the stager's in-rate applies to these bytes

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

    def exec_at_cpus(self, i: int, cpus: float, sampled_ratio: float | None) -> float:
        """Seconds of task ``i`` on ``cpus`` CPUs by the cost model (a threaded kind on fewer threads than its quota).

        At the plan's SLA, or its mean times ``sampled_ratio`` in a sampled run (as :meth:`exec_on`).
        """
        exec_s, base_s = self._at_cpus(cpus)
        return float(exec_s[i] if sampled_ratio is None else base_s[i] * sampled_ratio)

    def _at_cpus(self, cpus: float) -> tuple[np.ndarray, np.ndarray]:
        """Every task's (seconds at the SLA, mean seconds) on ``cpus`` CPUs, estimated once per CPU count."""
        cache = self._at_cpus_cache
        if cpus not in cache:
            from planning.profiles import Catalog, ResourceProfile

            one = Catalog([ResourceProfile(f"{cpus:g}-cpus", cpus, 1024.0, 0.0)], name="threads")
            est = self.cost_model.estimate_workflow(self.workflow, one, self.plan.sla)
            cache[cpus] = (est.exec_s[:, 0].copy(), est.base_exec_s[:, 0].copy())
        return cache[cpus]

    @cached_property
    def peak_cpus(self) -> float:
        """The plan's peak of CPUs held at once (:attr:`Plan.peak_cpus`), swept once for all the runs."""
        return float(self.plan.peak_cpus)

    def noise(self) -> Noise:
        if self._noise is None:
            cm = self.cost_model
            self._noise = Noise(np.asarray(cm.transfer_distribution(1.0, "download").ratios, float),
                                np.asarray(cm.transfer_distribution(1.0, "upload").ratios, float),
                                np.asarray(cm.startup_distribution("*", True).ratios, float),
                                np.asarray(cm.startup_distribution("*", False).ratios, float))
        return self._noise


def plan_estimates(plan: Any, cost_model: Any, workflow: Workflow) -> Any:
    """The estimates the plan was timed with, when this very cost model in its current state made them of this workflow."""
    by = getattr(plan, "estimated_by", None)
    if by is None or not by.made(cost_model, workflow):
        return None
    estimates = plan.estimates      # (a copy of the plan with another SLA or catalog keeps them: check)
    same = estimates.sla == plan.sla and list(estimates.profiles) == list(plan.catalog.names)
    return estimates if same else None


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
