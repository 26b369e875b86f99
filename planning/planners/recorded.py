"""``recorded``: a pseudo-planner that replays what a real execution did.

Real WfFormat executions record each task's runtime and the machine it ran on,
but not when it started.  This planner rebuilds a plan from those facts so the
simulator can replay the execution and :func:`experiments.calibration.calibrate` can fit the
workflow system's overheads to the recorded makespans:

* **machines as workers**: every machine contributes one logical worker per core
  (``"{machine}#{k}"``), so a machine runs as many tasks at once as it has cores;
  ``slots_per_core`` (default 1) more when the workflow system ran more tasks at
  once than the recorded core count says - e.g. 2 when a system recorded physical
  cores but started a task per hardware thread (Makeflow's Work Queue workers take
  every logical CPU; WfInstances' Makeflow runs record 24 cores on the 48-thread
  nodes whose Pegasus runs record 48).  Calibration chooses it from the makespans
  (:mod:`experiments.calibration.slots`).
  A task's machine is the first it lists; without one, the workflow's only
  machine, else one machine ``"local"`` with a slot per task.
* **slots by list scheduling**: tasks are given to slots in order of the time
  they became ready (recorded runtimes, no overheads), each to the slot of its
  machine that is free first - preferring, among the slots free in time, one that
  ran a parent (its output is then local).  This stands in for the recorded start
  times WfFormat instances do not have.
* **runtimes as recorded**: the plan's execution times are the recorded
  runtimes (:func:`planning.recordings.recorded_durations`), not the cost model's, and transfers and
  start-ups are free: everything else is the platform's overhead, to calibrate.
* **profiles**: one per machine, one CPU per slot, the machine's memory, price 0
  (a recorded cluster has no per-second price).

Cost: O((n + e) log n).  :meth:`Recorded.replay` gives the plan as a simulation reads it
(:class:`ReplayPlan`: the assignment, without the analytic timing until something else is read),
which is what calibration replays.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from planning.errors import PlanError
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.profiles import Catalog, ResourceProfile
from planning.recordings import machine_cores, machine_of, recorded_durations
from planning.sla import SLA
from planning.workflow import Workflow

if TYPE_CHECKING:
    from planning.costs.cost_model import CostModel

def slot_assignment(workflow: Workflow, durations: dict[str, float], machines: dict[str, str],
                    cores: dict[str, int]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Task -> slot and each slot's sequence, by list scheduling in ready-time order."""
    worker_of, sequence, _ = _list_schedule(workflow, durations, machines, cores)
    return worker_of, sequence


def replay_makespan(workflow: Workflow, slots_per_core: float = 1.0) -> float:
    """The makespan of the replay's list schedule with no overheads (recorded runtimes, free transfers): what
    the simulator gives the ``recorded`` plan on ``Platform.zero()``, without building the plan.

    Why: calibration screens whether another count of slots per core could matter
    (:func:`experiments.calibration.slots.can_matter`); re-planning, compiling and simulating every execution
    to answer that took a third of 1000genome's fit."""
    machines = machine_of(workflow)
    cores = slots(machine_cores(workflow, machines), workflow, float(slots_per_core))
    _, _, finish = _list_schedule(workflow, recorded_durations(workflow), machines, cores)
    return max(finish.values(), default=0.0)


def _list_schedule(workflow: Workflow, durations: dict[str, float], machines: dict[str, str],
                   cores: dict[str, int]) -> tuple[dict[str, str], dict[str, list[str]], dict[str, float]]:
    """:func:`slot_assignment` and each task's finish time in that schedule."""
    index = workflow.index()
    remaining = {t: workflow.graph.in_degree(t) for t in index}
    ready_at = {t: 0.0 for t in index}
    heap = [(0.0, index[t], t) for t in index if remaining[t] == 0]
    heapq.heapify(heap)
    free: dict[str, list[float]] = {m: [0.0] * cores[m] for m in cores}   # per slot
    worker_of: dict[str, str] = {}
    slot_of: dict[str, int] = {}
    finish: dict[str, float] = {}
    sequence: dict[str, list[str]] = {}
    while heap:
        ready, _, t = heapq.heappop(heap)
        m = machines[t]
        slots = free[m]
        local = [slot_of[p] for p in workflow.parents(t) if machines[p] == m and slots[slot_of[p]] <= ready]
        if local:
            k = min(local)
        else:
            # the lowest slot free by then, else the one free first (the lowest of those): the slot minimising
            # (max(free_at, ready), slot), found without a key call per slot (this loop is most of a replay's plan)
            first = min(slots)
            k = next(s for s, at in enumerate(slots) if at <= ready) if first <= ready else slots.index(first)
        start = max(slots[k], ready)
        finish[t] = start + durations[t]
        slots[k] = finish[t]
        slot_of[t] = k
        w = f"{m}#{k}"
        worker_of[t] = w
        sequence.setdefault(w, []).append(t)
        for c in workflow.children(t):
            ready_at[c] = max(ready_at[c], finish[t])
            remaining[c] -= 1
            if remaining[c] == 0:
                heapq.heappush(heap, (ready_at[c], index[c], c))
    return worker_of, sequence, finish


def slots(cores: dict[str, int], workflow: Workflow, per_core: float) -> dict[str, int]:
    """Task slots per machine: its recorded cores times ``per_core`` (at least one); a machine whose cores
    were not recorded keeps one slot per task it ran."""
    if per_core == 1.0:
        return cores
    recorded = workflow.metadata.get("machines") or {}
    known = {m for m in cores if isinstance((recorded.get(m) or {}).get("cores"), (int, float))
             and recorded[m]["cores"] >= 1}
    return {m: max(1, int(round(c * per_core))) if m in known else c for m, c in cores.items()}


@register_planner("recorded")
class Recorded(Planner):
    """Replay a recorded execution; see the module docstring.  Ignores the catalog and the cost model."""

    def __init__(self, *, slots_per_core: float = 1.0) -> None:
        if isinstance(slots_per_core, bool) or not isinstance(slots_per_core, (int, float)) or not (
                math.isfinite(slots_per_core) and slots_per_core > 0):
            raise PlanError(f"recorded planner: slots_per_core must be a number > 0, got {slots_per_core!r}",
                            "give the tasks each recorded core ran at once, e.g. slots_per_core=2")
        self.slots_per_core = float(slots_per_core)

    def plan(self, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA) -> Plan:
        return self.replay(workflow, catalog, cost_model, sla).timed()

    def replay(self, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA) -> "ReplayPlan":
        """The replay's plan without its analytic timing until something reads it (:class:`ReplayPlan`)."""
        from planning.costs.cost_model import CostModel

        durations = recorded_durations(workflow)
        if not any(t.runtime_s for t in workflow.tasks):
            raise PlanError(f"workflow {workflow.name!r} has no recorded runtimes to replay",
                            "use the 'recorded' planner on a real WfFormat execution, or another planner")
        machines = machine_of(workflow)
        cores = slots(machine_cores(workflow, machines), workflow, self.slots_per_core)
        worker_of, sequence = slot_assignment(workflow, durations, machines, cores)
        recorded = workflow.metadata.get("machines") or {}
        need = {m: 0.0 for m in cores}
        for t in workflow.tasks:
            need[machines[t.id]] = max(need[machines[t.id]], t.memory_mb or 0.0)
        profiles = []
        for m in sorted(cores):
            mem = (recorded.get(m) or {}).get("memory_bytes")
            memory_mb = max(float(mem) / 2 ** 20 if mem else 0.0, need[m], 1.0)
            profiles.append(ResourceProfile(m, 1.0, memory_mb, 0.0))
        machines_catalog = Catalog(profiles, name="recorded")
        free = CostModel(latency_s=0.0, bandwidth_Bps=math.inf, cold_start_s=0.0, warm_start_s=0.0)
        estimates = free.estimate_workflow(workflow, machines_catalog, sla)
        runtimes = np.array([durations[t] for t in estimates.task_ids])
        matrix = np.repeat(runtimes[:, None], len(machines_catalog), axis=1)
        estimates = replace(estimates, exec_s=matrix, base_exec_s=matrix)
        worker_profile = {w: w.rsplit("#", 1)[0] for w in sequence}
        return ReplayPlan(workflow, machines_catalog, estimates, free, SLA.parse(sla), worker_of, worker_profile,
                          sequence, dict(self.params), cores)


class ReplayPlan:
    """A ``recorded`` plan as a simulation reads it - its assignment, catalog, estimates and SLA - with the
    :class:`~planning.plan.Plan`'s analytic timing (its task and worker frames, bounds, checks) made only when
    something else is read (:meth:`timed`, then every other attribute is the timed plan's).

    Why: calibration replays every execution on the simulator and never reads the planner's timing of the
    assignment, which was a third of reading an execution (epigenomics: 1.4 s of the 3.7 s its 24 files took)."""

    planner = "recorded"
    dynamic = False

    def __init__(self, workflow: Workflow, catalog: Catalog, estimates: Any, cost_model: Any, sla: SLA,
                 worker_of: dict[str, str], worker_profile: dict[str, str], sequence: dict[str, list[str]],
                 params: dict[str, Any], cores: dict[str, int]) -> None:
        from planning.assignment import Assignment
        from planning.plan import EstimatedBy

        self.workflow, self.workflow_name, self.catalog, self.estimates = workflow, workflow.name, catalog, estimates
        self.free, self.sla, self.params, self.cores = cost_model, sla, params, cores
        self.assignment = Assignment(dict(worker_of), dict(worker_profile), {w: list(ts) for w, ts in sequence.items()},
                                     {})
        self.estimated_by = EstimatedBy.of(cost_model, workflow)
        self._timed: Plan | None = None

    @property
    def structure_hash(self) -> str:
        return self.workflow.structure_hash()

    def timed(self) -> Plan:
        """The full plan: the assignment timed at the SLA (:meth:`Plan.from_assignment`), made once."""
        if self._timed is None:
            wf, a = self.workflow, self.assignment
            plan = Plan.from_assignment(wf, self.catalog, self.estimates, self.free, self.sla, a.worker_of,
                                        a.worker_profile, planner=self.planner, params=self.params,
                                        sequence=a.sequence)
            missing = sum(1 for t in wf.tasks if t.runtime_s is None)
            if missing:
                plan.notes.append(f"{missing} task(s) have no recorded runtime and replay as 0 s")
            plan.notes.append("slots per machine: " + ", ".join(f"{m}={c}" for m, c in sorted(self.cores.items())))
            self._timed = plan
        return self._timed

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_timed":   # (pickle's probes and a half-built instance: not the plan's)
            raise AttributeError(name)
        return getattr(self.timed(), name)
