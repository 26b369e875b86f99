"""``wukong``: no fixed assignment - workers are decided at run time, as in WUKONG.

WUKONG (Carver et al., SoCC 2020) schedules decentrally: the worker that finishes
a task runs one of the children it made ready and invokes a new worker for each
other one, and the worker that completes a fan-in's last dependency runs it.  The
plan is therefore *dynamic* (``plan.dynamic``): engines place tasks through
:meth:`DynamicProtocol.handle_downstream <planning.protocol.DynamicProtocol.handle_downstream>`,
and the plan's ``worker_of`` is only the planner's *prediction* of that policy
under the cost model's durations at the SLA:

* every root starts a worker named :func:`~planning.protocol.dynamic_worker_id` of it;
* a task's last-finishing parent (max by ``(done_s, topological index)``, the
  analytical schedule's tie-break) is the completion that makes it ready; among
  the children one completion makes ready, the first in topological order
  continues on that parent's worker and each other one starts a new worker
  ``dynamic_worker_id(child)``.

Placement and times are computed together in one pass in topological order
(O(n + e)): a placement needs the parents' finish times, which need their own
placements.  The plan is then timed by the shared analytical schedule with the
dynamic protocol's upload rule, which reproduces the prediction's times exactly.

One profile for all tasks: ``profile`` if given; else the cheapest profile whose
predicted makespan meets ``deadline`` (infeasible plans take the best one); else
the fastest profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from planning.errors import PlanError
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.protocol import DynamicProtocol, dynamic_worker_id
from planning.profiles import Catalog
from planning.schedule import ScheduleEvaluator, last_parent
from planning.sla import SLA
from planning.workflow import Workflow

if TYPE_CHECKING:
    from planning.costs.cost_model import CostModel


@dataclass(frozen=True)
class DynamicPrediction:
    """The dynamic policy's placement and times under fixed durations (task ids in topological order)."""

    worker_of: dict[str, str]
    done_s: dict[str, float]
    makespan_s: float


def predict_dynamic(evaluator: ScheduleEvaluator, exec_s: list[float], profile: str) -> DynamicPrediction:
    """Place and time every task as the dynamic protocol would, all workers on ``profile``.

    Uses the evaluator's precomputed transfers, start-up, invocation and
    coordination delays, so the times are those of the analytical schedule.
    """
    workflow, ids = evaluator.workflow, evaluator.ids
    protocol = DynamicProtocol(workflow, {}, {}, {})
    store = [protocol.handle_output(t, "").store for t in ids]
    startup = evaluator.startup_of(profile)
    invoke, coord = evaluator.invoke_s, evaluator.coordination_s
    n = len(ids)
    worker = [0] * n                   # worker number = index of the task that started it
    done = [0.0] * n
    continued = [False] * n            # whether a task's worker already continued one of its children
    for i in range(n):
        ps = evaluator.parents[i]
        if ps:
            last = last_parent(ps, done)
            best = done[last]
            ready = best + coord
            if not continued[last]:    # the first child (topological order) that last's completion made ready
                continued[last] = True
                w = worker[last]
                begin = ready          # same worker, free since last finished: no invocation, no start-up
            else:
                w = i
                begin = ready + invoke + startup
            download = 0.0
            row = evaluator.download_s[i]
            for k, p in enumerate(ps):
                if worker[p] != w and row[k] > download:
                    download = row[k]
        else:
            w, begin, download = i, invoke + startup, 0.0
        worker[i] = w
        end = begin + download + exec_s[i]
        done[i] = end + evaluator.upload_s[i] if store[i] else end
    makespan = max((done[s] + evaluator.fetch_s[k] for k, s in enumerate(evaluator.sinks)), default=0.0)
    return DynamicPrediction({ids[i]: dynamic_worker_id(ids[worker[i]]) for i in range(n)},
                             {ids[i]: done[i] for i in range(n)}, float(makespan))


@register_planner("wukong")
class Wukong(Planner):
    """See the module docstring."""

    def __init__(self, *, profile: str | None = None, deadline: float | None = None) -> None:
        self.profile = profile
        self.deadline = deadline

    def plan(self, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA) -> Plan:
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        evaluator = ScheduleEvaluator.for_cost_model(workflow, catalog, cost_model, sla)
        column = {name: j for j, name in enumerate(estimates.profiles)}

        def predict(profile: str) -> DynamicPrediction:
            return predict_dynamic(evaluator, np.asarray(estimates.exec_s)[:, column[profile]].tolist(), profile)

        notes: list[str] = []
        feasible = True
        if self.profile is not None:
            chosen = catalog[self.profile].name
        elif self.deadline is None:
            chosen = catalog.fastest().name
        else:
            memory_need = max((t.memory_mb or 0.0) for t in workflow.tasks)
            candidates = [p.name for p in catalog.by_price() if p.memory_mb >= memory_need]
            if not candidates:
                raise PlanError(f"no profile of catalog {catalog.name!r} has the {memory_need:g} MB a task needs",
                                "add a larger profile to the catalog")
            makespans = {p: predict(p).makespan_s for p in candidates}
            meeting = [p for p in candidates if makespans[p] <= self.deadline]
            if meeting:
                chosen = meeting[0]
            else:
                chosen = min(candidates, key=lambda p: (makespans[p], candidates.index(p)))
                feasible = False
                notes.append(f"no profile meets the deadline {self.deadline:g} s; best makespan "
                             f"{makespans[chosen]:.6g} s")
        prediction = predict(chosen)
        workers = dict.fromkeys(prediction.worker_of.values())
        plan = Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, prediction.worker_of,
                                    {w: chosen for w in workers}, planner=self.name, params=self.params,
                                    evaluator=evaluator, dynamic=True)
        plan.feasible = feasible
        plan.notes.extend(notes)
        plan.notes.append(f"dynamic: worker_of is the predicted run-time placement ({len(workers)} workers)")
        return plan
