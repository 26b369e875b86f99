"""Task clustering (WUKONG's fan-out and fan-in clustering): small or data-heavy tasks join one worker.

**What it does.**  A plan annotation, applied after any static planner:

* *fan-out*: the children of a task that would run on other workers, whose
  execution is shorter than what running them elsewhere costs (a cold start plus
  the download of their input), run on their parent's worker instead, smallest
  first, as long as their serial execution stays under that overhead;
* *fan-in*: the parents of a fan-in (a task with several parents) whose output
  takes longer to download than to compute run on the fan-in's worker, so their
  large outputs never go through storage.

Each candidate group is kept only when the re-timed plan is no slower (the
planner's own schedule, with the cost model's estimates at the plan's SLA), so
the thresholds come from the estimates and every kept group is predicted to pay.
The result is an ordinary assignment: the planner's schedule, the simulator and
the executor run it with no code of their own.

**What it assumes.**  A static plan (a dynamic one places its tasks at run time:
WUKONG clusters by itself); estimates of execution, transfer and start-up times.
**What it costs.**  Serial execution on one worker where there was parallelism;
one re-timing of the plan per candidate group when planning.
"""

from __future__ import annotations

from typing import Any



from planning.errors import PlanError
from planning.workflow import Workflow


def cluster_plan(plan: Any, workflow: Workflow, cost_model: Any) -> Any:
    """``plan`` with fan-out and fan-in clusters moved to one worker (:class:`planning.plan.Plan`, re-timed).

    ``plan.annotations["clustering"]`` records each kept group (task -> new worker)
    and the overheads that chose it.
    """
    if plan.dynamic:
        raise PlanError("task clustering applies to static plans; a dynamic (wukong) plan clusters at run time",
                        "use another planner, or drop 'clustering' from the optimizations")
    from planning.plan import Plan

    same = plan.estimated_by is not None and plan.estimated_by.made(cost_model, workflow)
    estimates = plan.estimates if same else cost_model.estimate_workflow(workflow, plan.catalog, plan.sla)
    exec_s = (plan.tasks["exec_end_s"] - plan.tasks["exec_start_s"]).to_dict()
    start_order = {t: (float(s), workflow.topology().index[t]) for t, s in plan.tasks["download_start_s"].items()}
    current, worker_of = plan, plan.worker_of
    kept: list[dict[str, str]] = []
    for group in candidate_groups(plan, workflow, cost_model, exec_s):
        if all(worker_of[t] == w for t, w in group.items()):
            continue                # an earlier group already moved these
        trial = {**worker_of, **group}
        timed = Plan.from_assignment(workflow, plan.catalog, estimates, cost_model, plan.sla, trial,
                                     _profiles(trial, plan.worker_profile), planner=plan.planner, params=plan.params,
                                     sequence=_sequences(trial, start_order))
        if timed.makespan_s <= current.makespan_s + 1e-12:
            current, worker_of = timed, trial
            kept.append(group)
    current.annotations = {**plan.annotations, "clustering": {"groups": kept, "moved": len({t for g in kept for t in g})}}
    current.notes = list(plan.notes)
    return current


def candidate_groups(plan: Any, workflow: Workflow, cost_model: Any, exec_s: dict[str, float]) -> list[dict[str, str]]:
    """Fan-out groups (small children -> their parent's worker), then fan-in groups (heavy parents -> the fan-in's)."""
    worker_of, profile = plan.worker_of, plan.worker_profile
    sla, catalog = plan.sla, plan.catalog
    cold = {p: float(cost_model.startup_s(catalog[p], True, sla)) for p in set(profile.values())}

    def download(nbytes: float) -> float:
        return float(cost_model.transfer_s(float(nbytes), "download", sla))

    groups: list[dict[str, str]] = []
    for p in workflow.task_ids:
        kids = [c for c in workflow.children(p) if worker_of[c] != worker_of[p]]
        if len(workflow.children(p)) < 2 or not kids:
            continue
        overhead = {c: cold[profile[worker_of[c]]] + download(workflow.edge_bytes(p, c)) for c in kids}
        budget = max(overhead.values())
        chosen, total = {}, 0.0
        for c in sorted((c for c in kids if exec_s[c] < overhead[c] and len(workflow.parents(c)) == 1),
                        key=lambda c: exec_s[c]):
            if total + exec_s[c] > budget:
                break
            chosen[c], total = worker_of[p], total + exec_s[c]
        if chosen:
            groups.append(chosen)
    for c in workflow.task_ids:
        ps = workflow.parents(c)
        if len(ps) < 2:
            continue
        saved = {p: download(workflow.edge_bytes(p, c)) for p in ps if worker_of[p] != worker_of[c]}
        heavy = [p for p in saved if saved[p] > exec_s[p] and workflow.children(p) == [c]]
        chosen, total = {}, 0.0
        for p in sorted(heavy, key=lambda p: exec_s[p]):
            if total + exec_s[p] > max(saved[q] for q in heavy):
                break
            chosen[p], total = worker_of[c], total + exec_s[p]
        if chosen:
            groups.append(chosen)
    return groups


def _profiles(worker_of: dict[str, str], profile: dict[str, str]) -> dict[str, str]:
    """The profiles of the workers that still have tasks."""
    return {w: profile[w] for w in dict.fromkeys(worker_of.values())}


def _sequences(worker_of: dict[str, str], start_order: dict[str, tuple[float, int]]) -> dict[str, list[str]]:
    """Each worker's tasks in the original plan's start order (a topological order: a child starts after its
    parents are done), ties broken by topological position."""
    seq: dict[str, list[str]] = {}
    for t in sorted(worker_of, key=start_order.__getitem__):
        seq.setdefault(worker_of[t], []).append(t)
    return seq


def moved_tasks(plan: Any) -> dict[str, str]:
    """Every task clustering moved, to its new worker (empty for a plan it did not change)."""
    groups = plan.annotations.get("clustering", {}).get("groups", [])
    return {t: w for g in groups for t, w in g.items()} if groups else {}


__all__ = ["cluster_plan", "candidate_groups", "moved_tasks"]

