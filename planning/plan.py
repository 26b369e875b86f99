"""The Plan: who runs what, on which profile, and when the planner expects it.

A planner decides three things - each task's logical worker, each worker's
profile and each worker's task order (an :class:`~planning.assignment.Assignment`) -
and :meth:`Plan.from_assignment` times that decision with the shared analytical
schedule (:mod:`planning.schedule`) using the cost model's estimates at the SLA,
under the worker protocol's decisions.  The plan keeps what it decided (the
assignment), what it planned with (the estimates) and the planned times, so
engines read them instead of re-deriving them.

The plan also carries what it was made with (planner, parameters, SLA, cost
model summary), lower bounds, and per-task annotations engines read (the executor:
``timeout_s``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from planning.assignment import Assignment
from planning.billing import BilledWorkers
from planning.errors import PlanError
from planning.profiles import Catalog
from planning.protocol import DynamicProtocol, WorkerProtocol
from planning.schedule import Layout, ScheduleEvaluator, ScheduleResult, ScheduleTimes
from planning.sla import SLA
from planning.workflow import Workflow

PLAN_FORMAT = "planlab-plan/1"


@dataclass(frozen=True)
class EstimatedBy:
    """Which cost model, in which fitted state, made a plan's estimates, and of which workflow (for reuse)."""

    cost_model: Any
    state: Any
    topology: Any

    @classmethod
    def of(cls, cost_model: Any, workflow: Workflow) -> "EstimatedBy":
        # fitting a CostModel replaces its per-SLA cache: that object identifies its fitted state
        return cls(cost_model, getattr(cost_model, "_sla_cache", None), workflow.topology())

    def made(self, cost_model: Any, workflow: Workflow) -> bool:
        """Whether ``cost_model``, as it is now, made the estimates of this very ``workflow`` (same topology object)."""
        return self.cost_model is cost_model and self.state is not None and \
            getattr(cost_model, "_sla_cache", None) is self.state and workflow.topology() is self.topology


@dataclass
class Plan(BilledWorkers):
    """A timed assignment of a workflow's tasks to workers and profiles."""

    workflow_name: str
    #: the workflow's structure hash, or the workflow itself until :attr:`structure_hash` is first read (see there)
    _structure_hash: "str | Workflow" = field(compare=False, repr=False)
    planner: str
    params: dict[str, Any]
    sla: SLA
    catalog: Catalog
    tasks: pd.DataFrame            # index task_id; worker, profile, phase times (see planning.schedule)
    workers: pd.DataFrame          # worker, profile, start_s, stop_s, tasks, busy_s, gb_s, cost
    makespan_s: float
    lower_bounds: dict[str, float] = field(default_factory=dict)
    annotations: dict[str, dict[str, Any]] = field(default_factory=dict)
    dynamic: bool = False
    feasible: bool = True
    notes: list[str] = field(default_factory=list)
    cost_model: dict[str, Any] = field(default_factory=dict)
    #: the planner's decision; derived from ``tasks`` only for a plan file written before plans stored it
    assignment: Assignment | None = None
    #: the estimates the plan was timed with, and which cost model made them (not saved with the plan)
    estimates: Any = field(default=None, repr=False, compare=False)
    estimated_by: "EstimatedBy | None" = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Planners may be called with the SLA as text ("p95"); the plan always holds an SLA.
        self.sla = SLA.parse(self.sla)
        if self.assignment is None:
            self.assignment = Assignment.from_tasks(self.tasks, self.workers)

    @property
    def structure_hash(self) -> str:
        """The planned workflow's :meth:`~planning.workflow.Workflow.structure_hash`, computed when first read.

        The hash walks the whole DAG three times (about 0.2 s at 10k tasks, a third
        of a fast planner's call on a fresh workflow) and only saving a plan or
        checking it against a workflow reads it, so a plan made by
        :meth:`from_assignment` holds its workflow until then (the workflow caches
        the value: a simulator's check against that workflow pays it once).
        """
        if not isinstance(self._structure_hash, str):
            self._structure_hash = self._structure_hash.structure_hash()
        return self._structure_hash

    def __getstate__(self) -> dict[str, Any]:
        # pickled (sent to another process) with the hash, not the workflow it would be computed from
        state = dict(self.__dict__)
        state["_structure_hash"] = self.structure_hash
        return state

    # ------------------------------------------------------------------ building
    @classmethod
    def from_assignment(cls, workflow: Workflow, catalog: Catalog, estimates: Any, cost_model: Any, sla: SLA,
                        worker_of: Mapping[str, str], worker_profile: Mapping[str, str], *, planner: str,
                        params: Mapping[str, Any] | None = None, sequence: Mapping[str, list[str]] | None = None,
                        evaluator: ScheduleEvaluator | None = None, protocol: type[WorkerProtocol] | None = None,
                        warm_starts: Mapping[str, float] | None = None, pooled_times: ScheduleTimes | None = None,
                        **extra: Any) -> "Plan":
        """Time an assignment with the cost model's estimates and wrap it as a Plan.

        ``estimates`` is ``cost_model.estimate_workflow(workflow, catalog, sla)``
        (passed in so planners that evaluate many assignments compute it once);
        ``evaluator`` likewise (``ScheduleEvaluator.for_cost_model``).  The times
        follow ``protocol`` (a :class:`WorkerProtocol` subclass; by default the base
        protocol, or :class:`DynamicProtocol` with ``dynamic=True``).  ``warm_starts``:
        workers started ahead of their first task (pre-warm), seconds after the run's start.
        ``pooled_times``: the pooled timing a search already made of this assignment
        (``evaluator.run_estimates(..., pooled=True)``), reused when it times exactly
        this layout, these profiles and these execution seconds (else re-timed).
        """
        dynamic = bool(extra.get("dynamic", False))
        assignment, result = time_assignment(workflow, catalog, estimates, cost_model, sla, worker_of, worker_profile,
                                             sequence, dynamic=dynamic, evaluator=evaluator, protocol=protocol,
                                             warm_starts=warm_starts, pooled_times=pooled_times)
        tasks = result.tasks.copy()
        order, topology = tasks.index.tolist(), workflow.topology()
        if order == list(topology.ids):     # the schedule's rows are in topological order: the kinds kept there
            kinds = topology.kinds
        else:
            nodes = workflow.graph.nodes    # one view for all the look-ups (workflow.task makes one per call)
            kinds = [nodes[t]["task"].kind for t in order]
        tasks.insert(0, "kind", kinds)
        plan = cls(workflow.name, workflow, planner, dict(params or {}), sla, catalog, tasks,
                   result.workers, result.makespan_s, assignment=assignment, estimates=estimates,
                   estimated_by=EstimatedBy.of(cost_model, workflow), **extra)
        plan.lower_bounds = lower_bounds(workflow, catalog, estimates, n_workers=len(result.workers),
                                         parents=evaluator.parents if evaluator is not None else None)
        plan.cost_model = {"fitted": bool(getattr(cost_model, "fitted", False)),
                           "prior_tasks": int(np.sum(np.asarray(estimates.source) == "prior"))}
        return plan.validate(workflow)

    # ------------------------------------------------------------------ views
    @property
    def worker_of(self) -> dict[str, str]:
        return dict(self.assignment.worker_of)

    @property
    def worker_profile(self) -> dict[str, str]:
        return dict(self.assignment.worker_profile)

    def sequence(self) -> dict[str, list[str]]:
        """Each worker's tasks in its planned order (a copy of the assignment's)."""
        return {w: list(ts) for w, ts in self.assignment.sequence.items()}

    def retimed(self, workflow: Workflow, cost_model: Any, protocol: type[WorkerProtocol]) -> "Plan":
        """This plan's assignment timed under another protocol (e.g. an optimization a config names)."""
        a = self.assignment
        same = self.estimated_by is not None and self.estimated_by.made(cost_model, workflow)
        estimates = self.estimates if same else cost_model.estimate_workflow(workflow, self.catalog, self.sla)
        plan = Plan.from_assignment(workflow, self.catalog, estimates, cost_model, self.sla, a.worker_of,
                                    a.worker_profile, planner=self.planner, params=self.params, sequence=a.sequence,
                                    protocol=protocol, dynamic=self.dynamic, warm_starts=a.warm_starts)
        plan.annotations, plan.feasible, plan.notes = self.annotations, self.feasible, list(self.notes)
        return plan

    @property
    def slr(self) -> float:
        """Schedule length ratio: makespan over the larger lower bound (>= 1 for a sound bound)."""
        bound = max(self.lower_bounds.values(), default=0.0)
        return float(self.makespan_s / bound) if bound > 0 else float("nan")

    @property
    def peak_cpus(self) -> float:
        """The most CPUs the plan's workers hold at once (their profiles' quotas, over the planned spans).

        Sweeps the workers' start and stop times: O(W log W).  A worker stopping at
        the instant another starts does not overlap it.
        """
        events = []
        for profile, start, stop in zip(self.workers["profile"], self.workers["start_s"], self.workers["stop_s"]):
            cpus = float(self.catalog[profile].cpus) if profile in self.catalog else 0.0
            events += [(float(start), 1, cpus), (float(stop), 0, -cpus)]
        peak = held = 0.0
        for _, _, change in sorted(events):
            held += change
            peak = max(peak, held)
        return peak

    def capacity_note(self, host_cores: float) -> str | None:
        """A warning when the plan asks for more CPUs at once than a host of ``host_cores`` has, else None."""
        peak = self.peak_cpus
        if not peak > host_cores:
            return None
        return (f"the plan holds up to {peak:g} CPUs at once but the host has {host_cores:g} cores: its workers will "
                f"share them, which the planned times do not model (the simulator's host model does)")

    def summary(self) -> dict[str, Any]:
        return {"planner": self.planner, "workflow": self.workflow_name, "sla": self.sla.name,
                "makespan_s": self.makespan_s, "cost": self.cost, "gb_s": self.gb_s,
                "lower_bound_s": max(self.lower_bounds.values(), default=0.0), "slr": self.slr,
                "workers": int(len(self.workers)), "profiles": sorted(set(self.workers["profile"])),
                "peak_cpus": self.peak_cpus, "feasible": self.feasible, "dynamic": self.dynamic,
                "notes": list(self.notes)}

    def to_frame(self) -> pd.DataFrame:
        """Tidy view: one row per task with placement and planned phase times."""
        frame = self.tasks.reset_index()
        frame.insert(0, "planner", self.planner)
        frame.insert(1, "sla", self.sla.name)
        return frame

    # ------------------------------------------------------------------ validation
    def validate(self, workflow: Workflow | None = None) -> "Plan":
        """Every task assigned, profiles in the catalog, one profile per worker, memory respected."""
        # plain lists of the columns: iterating an Arrow-backed column element by element costs ~10 us a value
        profiles = self.tasks["profile"].tolist()
        profile_of_worker: dict = {}
        mixed = {w for w, p in zip(self.tasks["worker"].tolist(), profiles) if profile_of_worker.setdefault(w, p) != p}
        if mixed:
            raise PlanError(f"worker {min(mixed)!r} has more than one profile", "a worker has exactly one profile")
        for name in set(profiles):
            if name not in self.catalog:
                raise PlanError(f"plan uses profile {name!r}, which is not in catalog {self.catalog.name!r}",
                                f"use one of {', '.join(self.catalog.names)}")
        if workflow is not None:
            missing = set(workflow.task_ids) - set(self.tasks.index.tolist())
            if missing:
                raise PlanError(f"{len(missing)} task(s) are not assigned, e.g. {sorted(missing)[0]!r}",
                                "assign every task of the workflow")
            nodes = workflow.graph.nodes
            profile_of = dict(zip(self.tasks.index.tolist(), profiles))
            memory = {name: self.catalog[name].memory_mb for name in set(profiles)}
            for t in (nodes[tid]["task"] for tid in workflow.task_ids):
                need = t.memory_mb or 0.0
                if need > memory[profile_of[t.id]]:
                    raise PlanError(f"task {t.id!r} needs {need:g} MB but its profile "
                                    f"{profile_of[t.id]!r} has {memory[profile_of[t.id]]:g} MB",
                                    "give it a profile with enough memory")
        return self

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "workflow": self.workflow_name, "structure_hash": self.structure_hash,
                "planner": self.planner, "params": self.params, "sla": self.sla.name,
                "catalog": self.catalog.to_dict(), "makespan_s": self.makespan_s,
                "lower_bounds": self.lower_bounds, "annotations": self.annotations, "dynamic": self.dynamic,
                "feasible": self.feasible, "notes": self.notes, "cost_model": self.cost_model,
                **self.assignment.to_dict(),
                "tasks": self.tasks.reset_index().to_dict(orient="records"),
                "workers": self.workers.to_dict(orient="records")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Plan":
        if data.get("format") != PLAN_FORMAT:
            raise PlanError(f"not a planlab plan (format {data.get('format')!r})", "give a file written by 'planlab plan --out'")
        tasks = pd.DataFrame(data["tasks"]).set_index("task_id")
        workers = pd.DataFrame(data["workers"])
        assignment = None
        if "sequence" in data:
            assignment = Assignment(tasks["worker"].to_dict(),
                                    dict(zip(workers["worker"].tolist(), workers["profile"].tolist())),
                                    {w: list(ts) for w, ts in data["sequence"].items()},
                                    {w: float(t) for w, t in data.get("warm_starts", {}).items()})
        return cls(data["workflow"], data["structure_hash"], data["planner"], data["params"], SLA.parse(data["sla"]),
                   Catalog.from_dict(data["catalog"]), tasks, workers, data["makespan_s"],
                   data["lower_bounds"], data["annotations"], data["dynamic"], data["feasible"], data["notes"],
                   data["cost_model"], assignment)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1, default=_json_default)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, path: str | Path) -> "Plan":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise PlanError(f"cannot read plan {str(path)!r}: {exc}", "give a plan JSON written by planlab") from None


def time_assignment(workflow: Workflow, catalog: Catalog, estimates: Any, cost_model: Any, sla: SLA,
                    worker_of: Mapping[str, str], worker_profile: Mapping[str, str],
                    sequence: Mapping[str, list[str]] | None = None, *, dynamic: bool = False,
                    evaluator: ScheduleEvaluator | None = None, protocol: type[WorkerProtocol] | None = None,
                    warm_starts: Mapping[str, float] | None = None,
                    pooled_times: ScheduleTimes | None = None) -> tuple[Assignment, ScheduleResult]:
    """The assignment (with its default sequence filled in) and its analytical schedule at the SLA.

    The schedule follows the protocol's compiled decisions (``protocol``, a
    :class:`~planning.protocol.WorkerProtocol` subclass; the base protocol by
    default, :class:`~planning.protocol.DynamicProtocol` when ``dynamic``), so the
    plan stores and fetches exactly what the engines will.  ``pooled_times``: see
    :meth:`Plan.from_assignment`.
    """
    column = {name: j for j, name in enumerate(estimates.profiles)}
    for w, p in worker_profile.items():
        if p not in column:
            raise PlanError(f"worker {w!r} has profile {p!r}, not in catalog {catalog.name!r}",
                            f"use one of {', '.join(catalog.names)}")
    ev = evaluator or ScheduleEvaluator.for_cost_model(workflow, catalog, cost_model, sla)
    missing = [t for t in workflow.task_ids if t not in worker_of]
    if missing:
        raise PlanError(f"{len(missing)} task(s) have no worker, e.g. {missing[0]!r}", "assign every task to a worker")
    if sequence is None:
        seq: dict[str, list[str]] = {}
        for t in workflow.task_ids:
            seq.setdefault(worker_of[t], []).append(t)
    else:
        seq = {w: list(ts) for w, ts in sequence.items()}
    assignment = Assignment(dict(worker_of), dict(worker_profile), seq, dict(warm_starts or {}))
    cls = protocol or (DynamicProtocol if dynamic else WorkerProtocol)
    decided = cls(workflow, assignment.worker_of, assignment.worker_profile, seq, dynamic=dynamic,
                  **({"warm_starts": assignment.warm_starts} if assignment.warm_starts else {}))
    decided._assignment = assignment
    layout = ev.layout(worker_of, seq, decided)
    # timed with the pool rule, as the simulator meets the events (a dynamic plan's placement is its prediction's,
    # made by the same rule: planning.planners.wukong.predict_dynamic)
    if pooled_times is not None and times_this(pooled_times, layout, worker_profile, estimates):
        return assignment, ev.result(pooled_times)
    return assignment, ev.result(ev.run_estimates(layout, worker_profile, estimates, pooled=True))


def times_this(times: ScheduleTimes, layout: Layout, worker_profile: Mapping[str, str], estimates: Any) -> bool:
    """Whether ``times`` is a timing of ``layout`` with these profiles and the execution seconds ``estimates``
    give them: everything the timing reads (so a search's timing of the final assignment can stand for it).  O(n + e).
    """
    mine = times.layout
    if mine is not layout and (mine.workers != layout.workers or mine.worker != layout.worker
                               or mine.prev != layout.prev or mine.store != layout.store
                               or mine.exec_profile != layout.exec_profile or mine.warm != layout.warm
                               or mine.preload != layout.preload or mine.lazy != layout.lazy
                               or list(mine.remote) != list(layout.remote)):
        return False
    profiles = tuple(worker_profile[w] for w in layout.workers)
    if times.profiles != profiles:
        return False
    column = {name: j for j, name in enumerate(estimates.profiles)}
    per_task = (np.array([column[p] for p in layout.exec_profile], dtype=np.int64) if layout.exec_profile is not None
                else np.array([column[p] for p in profiles], dtype=np.int64)[np.asarray(layout.worker, dtype=np.int64)])
    exec_s = np.asarray(estimates.exec_s)[np.arange(len(per_task)), per_task]
    return times.exec_s == exec_s.tolist()


def lower_bounds(workflow: Workflow, catalog: Catalog, estimates: Any, n_workers: int,
                 parents: Sequence[Sequence[int]] | None = None) -> dict[str, float]:
    """Two classic bounds on any plan's makespan (free transfers and start-ups).

    ``critical_path_s``: the critical path with every task on its fastest profile.
    ``work_over_capacity_s``: total work (each task at its fastest) over the plan's
    worker count.  ``parents`` (task indices per task in topological order, e.g.
    ``ScheduleEvaluator.parents``) skips the graph walk.  O(n + e).
    """
    fastest = np.asarray(estimates.exec_s).min(axis=1)
    if parents is None:
        row = workflow.index()
        length, _ = workflow.critical_path(task_weight={t: fastest[i] for t, i in row.items()})
    else:
        weight = fastest.tolist()
        finish = [0.0] * len(weight)
        for i, ps in enumerate(parents):
            start = 0.0
            for p in ps:
                if finish[p] > start:
                    start = finish[p]
            finish[i] = start + weight[i]
        length = max(finish, default=0.0)
    return {"critical_path_s": float(length), "work_over_capacity_s": float(fastest.sum() / max(1, n_workers))}


def _json_default(value: Any) -> Any:
    """numpy scalars as Python numbers (exact, unlike a fixed number of digits)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")
