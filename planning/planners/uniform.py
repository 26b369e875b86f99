"""``uniform``: every task on one profile, workers assigned for locality.

Locality rules (one pass in topological order, O(n + e)):

* a chain stays on one worker: a task continues on a parent's worker;
* a fan-out is split: a parent's worker continues only its first child (in
  topological order); every other child starts a new worker;
* a fan-in continues on the worker that holds the most input bytes among its
  parents whose worker is still free to continue.

The profile is the one given, else the cheapest whose planned makespan meets
``deadline``; if none does, the fastest, and the plan is marked infeasible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from planning.errors import PlanError
from planning.gcpause import paused_gc
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.profiles import Catalog
from planning.schedule import ScheduleEvaluator
from planning.sla import SLA
from planning.topology import segments
from planning.workflow import Workflow

if TYPE_CHECKING:
    from planning.costs.cost_model import CostModel


def locality_workers(workflow: Workflow) -> dict[str, str]:
    """Task -> logical worker id under the locality rules above.

    On the workflow's topology (integer lists: :meth:`~planning.workflow.Workflow.topology`), not networkx's
    dicts: a search planner at 10k tasks pays this once per call.
    """
    topology = workflow.topology()
    ids, parents = topology.ids, topology.parents
    edge_bytes = segments(topology.edge_bytes.tolist(), topology.indegree)    # per task, its in-edges' bytes
    worker = [0] * len(ids)
    continued = [False] * len(ids)       # parents whose worker already continued one child
    count = 0
    for i, ps in enumerate(parents):
        offers: dict[int, float] = {}
        for p, nbytes in zip(ps, edge_bytes[i]):
            if not continued[p]:
                offers[worker[p]] = offers.get(worker[p], 0) + nbytes
        if offers:
            chosen = max(offers, key=lambda w: (offers[w], -w))
            for p in ps:
                if worker[p] == chosen:
                    continued[p] = True
        else:
            chosen = count
            count += 1
        worker[i] = chosen
    return {t: f"w{w}" for t, w in zip(ids, worker)}


def locality_layout(workflow: Workflow) -> tuple[dict[str, str], list[str], dict[str, float]]:
    """Locality workers, the worker ids in order, and each worker's memory need (its tasks' largest minimum)."""
    worker_of = locality_workers(workflow)
    workers = sorted(set(worker_of.values()), key=lambda w: int(w[1:]))
    need = {w: 0.0 for w in workers}
    for t in workflow.tasks:
        need[worker_of[t.id]] = max(need[worker_of[t.id]], t.memory_mb or 0.0)
    return worker_of, workers, need


#: ``locality``: the rules above.  ``single``: every task on one worker, one at a time - how a
#: profiling run measures each task on a profile without other tasks competing for the machine.
WORKER_LAYOUTS = ("locality", "single")


@register_planner("uniform")
class Uniform(Planner):
    """One profile for all tasks; see the module docstring."""

    def __init__(self, *, profile: str | None = None, deadline: float | None = None,
                 workers: str = "locality") -> None:
        if workers not in WORKER_LAYOUTS:
            raise PlanError(f"planner 'uniform': unknown workers = {workers!r}",
                            f"use one of: {', '.join(WORKER_LAYOUTS)}")
        self.profile = profile
        self.deadline = deadline
        self.workers = workers

    # a cold call on a freshly built workflow builds its topology and many lists: the collector's walks of the
    # heap are waste (x1.5 at 10k tasks)
    @paused_gc()
    def plan(self, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA) -> Plan:
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        worker_of = (locality_workers(workflow) if self.workers == "locality"
                     else {t: "w0" for t in workflow.task_ids})
        workers = sorted(set(worker_of.values()), key=lambda w: int(w[1:]))
        evaluator = ScheduleEvaluator.for_cost_model(workflow, catalog, cost_model, sla)

        def make(profile: str) -> Plan:
            return Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, worker_of,
                                        {w: profile for w in workers}, planner=self.name, params=self.params,
                                        evaluator=evaluator)

        if self.profile is not None:
            return make(catalog[self.profile].name)
        if self.deadline is None:
            raise PlanError("planner 'uniform' needs a profile or a deadline",
                            "set profile = \"NAME\" or deadline = SECONDS in the planner's parameters")
        memory_need = max((t.memory_mb or 0.0) for t in workflow.tasks)
        candidates = [p for p in catalog.by_price() if p.memory_mb >= memory_need]
        if not candidates:
            raise PlanError(f"no profile of catalog {catalog.name!r} has the {memory_need:g} MB a task needs",
                            "add a larger profile to the catalog")
        layout = evaluator.layout(worker_of)
        makespan = {p.name: evaluator.run_estimates(layout, [p.name] * len(layout.workers), estimates,
                                                    pooled=True).makespan_s
                    for p in candidates}                 # the fast schedule: the same makespans as the plans
        for profile in candidates:
            if makespan[profile.name] <= self.deadline:
                return make(profile.name)
        best = make(min(candidates, key=lambda p: makespan[p.name]).name)
        best.feasible = False
        best.notes.append(f"no profile meets the deadline {self.deadline:g} s; best makespan {best.makespan_s:.6g} s")
        return best
