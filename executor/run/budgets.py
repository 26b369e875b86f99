"""What a plan grants its tasks on this host: each profile's CPUs, memory and threads, each task's timeout."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from executor.settings import ExecutorSettings
from planning.costs.threads import fair_thread_counts, quota_threads
from planning.errors import ExecutionError
from planning.workflow import Workflow

if TYPE_CHECKING:
    from planning.plan import Plan

__all__ = ["profile_budgets", "profile_threads", "task_timeouts", "thread_counts", "thread_share"]


def thread_share(plan: Plan, host_cpus: int | None = None) -> float:
    """The fraction of its CPUs a worker can really get: host CPUs over the plan's peak of planned CPUs (<= 1).

    The peak is the largest sum of CPUs of workers whose planned lifetimes overlap (:attr:`Plan.peak_cpus`).
    """
    host = float(host_cpus or os.cpu_count() or 1)
    peak = plan.peak_cpus
    return min(1.0, host / peak) if peak > 0 else 1.0


def profile_threads(cpus: float, share: float) -> int:
    """The executor's thread rule: BLAS/OpenMP threads for a profile of ``cpus`` CPUs at ``share`` of them (>= 1).

    Whole CPUs of the share only: pools larger than the CPUs a process really gets spin
    and burn its quota (``executor.limits.threads``; :func:`planning.costs.threads.quota_threads`).
    """
    return quota_threads(float(cpus) * share)


def thread_counts(plan: Plan, rule: str, host_cpus: int | None = None) -> dict[str, int]:
    """Per profile of the plan's catalog, the BLAS/OpenMP threads its workers run under ``rule`` ("fair"/"quota").

    One rule with the simulator's (:func:`planning.costs.threads.fair_thread_counts`).
    """
    cpus = {p.name: float(p.cpus) for p in plan.catalog}
    if rule != "fair":
        return {name: quota_threads(c) for name, c in cpus.items()}
    return fair_thread_counts(cpus, plan.peak_cpus, float(host_cpus or os.cpu_count() or 1))


def profile_budgets(plan: Plan, settings: ExecutorSettings) -> dict[str, tuple[float, float, int]]:
    """Per profile of the plan's catalog: CPUs, memory (MiB) and threads, for a worker or a task run under it.

    ``settings.threads == "fair"`` sizes threads to the worker's fair share of this
    host (:func:`thread_counts`), ``"quota"`` to the profile's whole CPU quota.
    """
    threads = thread_counts(plan, settings.threads)
    return {p.name: (float(p.cpus), float(p.memory_mb), threads[p.name]) for p in plan.catalog}


def task_timeouts(workflow: Workflow, plan: Plan, settings: ExecutorSettings) -> dict[str, float]:
    """Each task's timeout in seconds (a task absent from the result has none).

    Most specific first: the plan's per-task annotation ``plan.annotations["timeout_s"]``
    (a planner's or the user's), then ``settings.task_timeout_s`` for every task, then
    ``max(task_timeout_min_s, task_timeout_factor x the planned execution time)`` -
    replay tasks burn ``scale`` times their runtime, so their estimate is scaled too.
    """
    annotated = dict((getattr(plan, "annotations", None) or {}).get("timeout_s") or {})
    for task_id, value in annotated.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 366 * 86400:
            raise ExecutionError(f"the plan's timeout_s annotation of task {task_id!r} is {value!r}",
                                 "annotate a number of seconds > 0 (at most a year)")
    tasks = plan.tasks
    planned = (tasks["exec_end_s"] - tasks["exec_start_s"]).to_dict() if len(tasks) else {}
    out = {}
    for t in workflow.tasks:
        if t.id in annotated:
            out[t.id] = float(annotated[t.id])
            continue
        if settings.task_timeout_s > 0:
            out[t.id] = float(settings.task_timeout_s)
            continue
        estimate = float(planned.get(t.id, 0.0))
        if not math.isfinite(estimate) or estimate < 0:
            estimate = 0.0
        if t.func is None:
            estimate *= settings.scale
        out[t.id] = max(settings.task_timeout_min_s, settings.task_timeout_factor * estimate)
    return {t: v for t, v in out.items() if v > 0}
