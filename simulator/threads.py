"""Threaded kinds on a shared host: the threads the executor's rule gives them, their time and their cores.

A *threaded* kind (:mod:`planning.costs.threads`: BLAS/OpenMP code, faster on more
CPUs in the profile measurements) runs one thread per CPU its worker's pool is
sized to.  The profile phase measures every profile alone, pools sized to the
quota.  In a run whose plan holds more CPUs at once than the host has cores, the
executor's ``threads="fair"`` rule shrinks every pool to the worker's share of the
host (:func:`planning.costs.threads.fair_thread_counts`), so a 2-CPU worker of a
ten-CPU plan on a 2-core host runs one thread.  Such a task then takes what the
cost model says on *one* CPU (it measured 1.44x its 2-CPU time on this machine) and
keeps one core busy, not two.  Without the rule the simulator charged it the 2-CPU
time on two cores: quickstart forecasts of HEFT's all-large five_branches plans were
15-23 % long.

Single-threaded kinds are untouched: one core, whatever their quota
(``Platform.task_parallelism``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from planning.costs.threads import fair_thread_counts, quota_threads

if TYPE_CHECKING:
    from simulator.engine import Run

__all__ = ["thread_counts", "apply_thread_rule"]


def thread_counts(run: "Run") -> dict[str, int] | None:
    """Per profile, the threads a threaded kind runs in this run (None: every pool is sized to its quota)."""
    model, platform = run.model, run.platform
    if not platform.shared_host or not platform.fair_threads or not model.threaded.any():
        return None
    return fair_thread_counts(model.cpus, model.peak_cpus, platform.host_cores)


def apply_thread_rule(run: "Run") -> None:
    """Set ``run.parallelism`` (cores each execution may keep busy) and re-time the tasks the rule slows down.

    A threaded task whose worker runs fewer threads than a pool sized to its quota
    would (the profile phase's) takes the cost model's time on that many CPUs, at
    its own sampled ratio in a sampled run, and keeps that many cores busy; other
    threaded tasks keep their whole quota busy.  Given durations (a replay of
    measured times) are kept as they are: only their cores change.
    """
    model, platform = run.model, run.platform
    if run.cpu is None:
        run.parallelism = None
        return
    parallelism = np.where(model.threaded, math.inf, platform.task_parallelism)
    counts = thread_counts(run)
    if counts is not None:
        used = run.exec_profile if run.tables is not None else model.planned_profile
        for i in np.flatnonzero(model.threaded).tolist():
            profile = used[i] or model.planned_profile[i]
            threads = counts[profile]
            if threads >= quota_threads(model.cpus[profile]):
                continue
            parallelism[i] = threads
            if model.durations is None:
                ratio = None if run.exec_ratio is None else run.exec_ratio[i]
                run.exec_s[i] = model.exec_at_cpus(i, float(threads), ratio)
    run.parallelism = parallelism.tolist()
