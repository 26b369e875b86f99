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

Placement and times are computed together, in one pass over the run's events in
time order (O((n + e) log n)), as the engines meet them: a completion (by
``(done, topological index)``, so the last parent is the analytical schedule's)
makes its children ready and decides their workers; a new worker's start finds
the processes that workers without a child to continue freed by then, and starts
warm on the most recent one still within keep-alive - the pool rule the simulator
and the static plans' timing share (:mod:`planning.schedule.startups`) - or cold.
The plan is then timed by the shared pooled analytical schedule with the dynamic
protocol's upload rule, which reproduces the prediction's times exactly, and a
deterministic simulation of the plan on the same platform does the same (ties in
time aside, where the simulator's event order may differ).

One profile for all tasks: ``profile`` if given; else the cheapest profile whose
predicted makespan meets ``deadline`` (infeasible plans take the best one); else
the fastest profile.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from planning.errors import PlanError
from planning.gcpause import paused_gc
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.protocol import DynamicProtocol, dynamic_worker_id
from planning.profiles import Catalog
from planning.schedule import ScheduleEvaluator
from planning.schedule.startups import take_idle
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


def predict_dynamic(evaluator: ScheduleEvaluator, exec_s: list[float], profile: str, *,
                    pooled: bool = True) -> DynamicPrediction:
    """Place and time every task as the dynamic protocol would, all workers on ``profile``.

    Uses the evaluator's precomputed transfers, start-ups, invocation and
    coordination delays and keep-alive, so the times are those of the analytical
    schedule; ``pooled=False`` charges every new worker a cold start (no reuse).
    """
    workflow, ids = evaluator.workflow, evaluator.ids
    protocol = DynamicProtocol(workflow, {}, {}, {})
    store = [protocol.handle_output(t, "").store for t in ids]
    cold, warm = evaluator.startup_of(profile), evaluator.warm_startup_of(profile)
    invoke, coord, keep_alive = evaluator.invoke_s, evaluator.coordination_s, evaluator.keep_alive_s
    n = len(ids)
    worker, done = list(range(n)), [0.0] * n    # worker number = index of the task that started it
    waiting = [len(evaluator.parents[i]) for i in range(n)]
    idle: list[float] = []                      # when each freed process stopped, in that order
    events: list[tuple[float, int, int]] = [(invoke, _START, i) for i in range(n) if not waiting[i]]
    heapq.heapify(events)                       # (time, kind, task): completions before starts at one time

    def run(i: int, begin: float) -> None:
        download, row = 0.0, evaluator.download_s[i]
        for k, p in enumerate(evaluator.parents[i]):
            if worker[p] != worker[i] and row[k] > download:
                download = row[k]
        end = begin + download + exec_s[i]
        done[i] = end + evaluator.upload_s[i] if store[i] else end
        heapq.heappush(events, (done[i], _DONE, i))

    while events:
        t, kind, i = heapq.heappop(events)
        if kind == _START:                      # a new worker for task i, invoked at t
            taken = take_idle(idle, t, keep_alive) if pooled else False
            if taken is None:
                idle.clear()                    # the most recent is cold, so every older one is too
            run(i, t + (warm if taken else cold))
            continue
        ready = [c for c in evaluator.children[i] if _met(waiting, c)]
        if not ready:                           # nothing to continue: the worker stops, its process is idle
            idle.append(t)
        for k, c in enumerate(sorted(ready)):
            if k == 0:                          # the first child it made ready continues on its worker
                worker[c] = worker[i]
                run(c, t + coord)
            else:
                heapq.heappush(events, (t + coord + invoke, _START, c))
    makespan = max((done[s] + evaluator.fetch_s[k] for k, s in enumerate(evaluator.sinks)), default=0.0)
    return DynamicPrediction({ids[i]: dynamic_worker_id(ids[worker[i]]) for i in range(n)},
                             {ids[i]: done[i] for i in range(n)}, float(makespan))


#: Event kinds, in the order they are handled at one time: a process freed at t is idle for a start at t.
_DONE, _START = 0, 1


def _met(waiting: list[int], child: int) -> bool:
    """Count one completed parent of ``child``; True when it was the last one."""
    waiting[child] -= 1
    return waiting[child] == 0


@register_planner("wukong")
class Wukong(Planner):
    """See the module docstring."""

    def __init__(self, *, profile: str | None = None, deadline: float | None = None) -> None:
        self.profile = profile
        self.deadline = deadline

    # the prediction allocates per-task lists and no cycles: at 10k tasks the collector's full walks of the
    # heap took most of the planning time
    @paused_gc()
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
