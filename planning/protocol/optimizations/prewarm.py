"""Pre-warm: the planner starts a worker shortly before its first task is planned to be ready.

**What it does.**  A plan optimization: for every worker whose first task is not a
root (roots' workers start with the run anyway) and waits for a cold start in the
plan (:func:`cold_first_tasks`), the planner sets a warm start at
``ready - lead`` (never before the run's start): the first task's planned readiness
minus a lead time, the worker's start-up at a high percentile of the cost model's
start-up distribution (``p95``), so the start-up is over by then even when it runs
slow.  The plan's :class:`~planning.assignment.Assignment` carries the warm starts
(``warm_starts``); the protocol compiles them (``DecisionTables.warm_starts``) and
the first task's invocation becomes a notification, so the planner's schedule, the
simulator and the executor (the client starts such workers at their times) all
take the start-up off the critical path.  The times are re-derived on the
pre-warmed plan (its tasks get ready earlier) until they no longer move.

A worker whose first task the plan already starts on an idle process (a warm
hand-off: a worker that finished before it is reused) has no cold start to remove:
warming it would gain the hand-off's milliseconds and start one more process while
the others start - on a host of few cores start-ups share the CPU, so every one of
them gets later (issue 17: gemm critical-path warmed two such workers at the run's
start; the simulation had all ten start-ups 25 % later, +22 % makespan).  Such
workers are left as they are.

**On a shared host** (``host_cores`` finite: the executor's workers share this
machine's cores) a start-up is CPU work like any execution: moved earlier, it pays
only where the cores it moves to would otherwise idle.  There the planner warms a
worker only when its start-up fits in the cores its plan leaves idle before the first
task is ready, placed just in time, and leaves the others cold - all of them when the
warmed plan would be no shorter (a warm-up off the critical path buys nothing but
billed seconds, and its worker's transfers then start with the others')
(:mod:`planning.protocol.optimizations.prewarm_host`; issue 17: epigenomics heft warmed
eight workers at the run's start on two cores, the plan said -22 %, the real runs 0).

**What it assumes.**  A static plan and start-up estimates that are not far too
short (a worker warmed too late still starts before its task, only less early).
**What it costs.**  Billed seconds: a warmed worker lives from its warm start, up to
``lead`` seconds idle before its first task; the plan's and the engines' GB-seconds
and cost count them (``workers.start_s`` is the warm start).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from planning.errors import PlanError
from planning.protocol.optimizations.prewarm_host import host_warm_starts
from planning.workflow import Workflow

#: The start-up percentile the lead time is taken at (a start-up slower than this is rare).
LEAD_SLA = "p95"
#: Re-derivations of the warm times on the pre-warmed plan (its tasks get ready earlier each time).
ROUNDS = 3


def prewarm_plan(plan: Any, workflow: Workflow, cost_model: Any, host_cores: float = math.inf) -> Any:
    """``plan`` with a warm start for every worker whose first task is not a root, re-timed.

    On a host of ``host_cores`` shared cores (finite) only the workers whose start-up fits in
    the cores the plan leaves idle before their first task is ready are warmed, just in time
    (:func:`planning.protocol.optimizations.prewarm_host.host_warm_starts`), and only when
    the warmed plan is shorter than ``plan``; the others start cold as planned.  ``plan.annotations["prewarm"]`` records the warm starts, each worker's
    lead, the host's cores and the workers left cold for want of idle cores (``held_back``).
    """
    if plan.dynamic:
        raise PlanError("pre-warm applies to static plans; a dynamic (wukong) plan starts workers at run time",
                        "use another planner, or drop 'prewarm' from the optimizations")
    from planning.plan import Plan

    same = plan.estimated_by is not None and plan.estimated_by.made(cost_model, workflow)
    estimates = plan.estimates if same else cost_model.estimate_workflow(workflow, plan.catalog, plan.sla)
    a = plan.assignment
    roots = set(workflow.roots())
    lead = {p: float(cost_model.startup_s(plan.catalog[p], True, LEAD_SLA)) for p in set(a.worker_profile.values())}
    cold = cold_first_tasks(plan)
    warmed = [w for w, seq in a.sequence.items() if seq and seq[0] not in roots and seq[0] in cold]
    candidates = list(warmed)
    warm: dict[str, float] = {}
    current = plan
    shared = math.isfinite(host_cores)
    for _ in range(ROUNDS):
        ready = current.tasks["ready_s"]
        first_ready = {w: float(ready[a.sequence[w][0]]) for w in warmed}
        if shared:   # the workers whose start-up fits in the idle cores, decided on the plan as planned
            order = list(warm_order(dict.fromkeys(warmed, 0.0), first_ready))
            new = host_warm_starts(current, cost_model, order, first_ready,
                                   {w: lead[a.worker_profile[w]] for w in warmed}, host_cores)
            if not warm:
                warmed = [w for w in warmed if w in new]
            new = {w: new.get(w, warm.get(w, 0.0)) for w in warmed}
        else:
            new = {w: max(0.0, first_ready[w] - lead[a.worker_profile[w]]) for w in warmed}
        new = {w: min(t, warm.get(w, t)) for w, t in new.items()}
        if new == warm:
            break
        # the engines start the workers in this order: the soonest needed first (warm_order)
        warm = warm_order(new, {w: float(ready[a.sequence[w][0]]) for w in new})
        current = Plan.from_assignment(workflow, plan.catalog, estimates, cost_model, plan.sla, a.worker_of,
                                       a.worker_profile, planner=plan.planner, params=plan.params,
                                       sequence=a.sequence, warm_starts=warm, dynamic=plan.dynamic)
    if shared and warm and not current.makespan_s < plan.makespan_s:
        # on a shared host a warm-up the plan gains nothing from still takes the cores' time (and starts its
        # worker's transfers with the others'): billed seconds for nothing the estimates can show
        warm, current = {}, plan
    if current is plan:     # nothing warmed: a copy, so that the caller's plan keeps its annotations
        current = dataclasses.replace(plan)
    held_back = sorted(w for w in candidates if w not in warm)
    current.annotations = {**plan.annotations, "prewarm": {"warm_starts": dict(warm), "lead_s": lead,
                                                           "lead_sla": LEAD_SLA, "host_cores": host_cores if shared else None,
                                                           "held_back": held_back}}
    current.notes, current.feasible = list(plan.notes), plan.feasible
    return current


def warm_order(warm: dict[str, float], first_ready: dict[str, float]) -> dict[str, float]:
    """The warm starts in the order the engines start them: by time, then by the planned readiness of the
    worker's first task (then by name).

    Warm starts due at the same instant (every worker warmed at the run's start when
    the leads exceed the first tasks' readiness, as in epigenomics) queue at the
    launcher, which starts them one at a time, and share the host's cores: the first
    started is ready first.  By name, epigenomics heft warmed the worker of its long
    ``map`` task seventh of eight and a ``filterContams`` needed at 0.09 s last (ready
    at 0.7 s in the simulation); the soonest-needed first gets each worker ready in
    the order its task needs it.

    >>> list(warm_order({"b": 0.0, "a": 0.0, "c": 0.0}, {"a": 0.5, "b": 0.1, "c": 0.1}))
    ['b', 'c', 'a']
    """
    return dict(sorted(warm.items(), key=lambda wt: (wt[1], first_ready[wt[0]], wt[0])))


def cold_first_tasks(plan: Any) -> set[str]:
    """The tasks whose worker the plan starts cold for them (not on an idle process handed over)."""
    tasks = plan.tasks
    return set(tasks.index[tasks["cold_start"].astype(bool)])


__all__ = ["prewarm_plan", "cold_first_tasks", "warm_order", "LEAD_SLA"]
