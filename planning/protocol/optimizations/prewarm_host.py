"""Pre-warm on a shared host: warm a worker only where its start-up runs on cores the plan leaves idle.

The plan's timing gives every worker its own machine, so a warm start before the
first task is ready looks free there: the start-up overlaps the parents' work.  On a
host of few cores (planlab's executor: every worker process shares this machine's
cores) a start-up is CPU work like any execution.  Moving it earlier only pays when
the cores it moves to would otherwise idle; where the running tasks already hold
every core, the warm-up takes from them what it saves (issue 17: epigenomics heft
warmed eight workers at the run's start beside its root on a 2-core host; the plan
said -22 %, the simulation -3 %, the real runs nothing).

:func:`host_warm_starts` decides, for the workers pre-warm would warm, in the order
their first tasks are needed (:func:`planning.protocol.optimizations.prewarm.warm_order`):

* the plan's CPU load over time: every execution holds ``min(cpus, 1)`` cores (its
  profile's quota; the whole quota for a kind the cost model knows as threaded), every
  start-up of a worker not warmed holds ``min(cpus, 1)`` (a start-up is one thread),
  where the plan puts them;
* the spare cores ``host_cores - load`` before the worker's first task is ready; its
  start-up (``work`` core-seconds, at most ``min(cpus, 1)`` cores at a time) is placed
  in them as late as it fits, i.e. just in time - its warm start is where that
  placement begins - and then counts as load for the workers after it;
* a start-up that does not fit in the spare cores before its first task's readiness
  is not warmed: the shared cores must pay for it anyway, and the worker starts cold
  where the plan had it (its start-up then counts as load there).

With ``host_cores`` infinite (a platform of one machine per worker) every spare
interval is unbounded and every worker is warmed ``work`` before its task, as the plain
rule does; the caller keeps the plain rule then.
"""

from __future__ import annotations

from typing import Any

__all__ = ["host_warm_starts", "CpuLoad"]


class CpuLoad:
    """A piecewise-constant load of cores over time: intervals added, spare capacity read back."""

    def __init__(self, cores: float) -> None:
        self.cores = float(cores)
        self._steps: list[tuple[float, float]] = []     # (time, +/- cores)

    def add(self, start: float, end: float, cores: float) -> None:
        """``cores`` busy over [start, end)."""
        if end > start and cores > 0:
            self._steps += [(float(start), float(cores)), (float(end), -float(cores))]

    def spare(self, until: float) -> list[tuple[float, float, float]]:
        """The spare cores before ``until`` as (start, end, cores) segments from time 0, in time order."""
        out, level, t = [], 0.0, 0.0
        for at, delta in sorted(self._steps):
            if at >= until:
                break
            if at > t:
                out.append((t, at, max(self.cores - level, 0.0)))
                t = at
            level += delta
        if until > t:
            out.append((t, until, max(self.cores - level, 0.0)))
        return out

    def place_late(self, work: float, cap: float, until: float) -> float | None:
        """The latest start from which ``work`` core-seconds, at most ``cap`` cores at a time in the spare
        cores, end by ``until``; the placement is then added to the load.  None when it does not fit.

        >>> load = CpuLoad(2.0)
        >>> load.add(0.0, 1.0, 2.0)       # both cores busy until 1
        >>> load.place_late(0.5, 1.0, 2.0)
        1.5
        >>> load.place_late(0.5, 1.0, 2.0)        # the other core, same interval
        1.5
        >>> load.place_late(0.75, 1.0, 2.0) is None   # both spare cores now hold 0.5 s each from 1.5 to 2
        True
        """
        need, pieces = float(work), []
        for start, end, spare in reversed(self.spare(until)):
            rate = min(spare, cap)
            if rate <= 1e-12:
                continue
            take = min(need, rate * (end - start))
            begin = end - take / rate
            pieces.append((begin, end, rate))
            need -= take
            if need <= 1e-12:
                for b, e, r in pieces:
                    self.add(b, e, r)
                return begin
        return None


def host_warm_starts(plan: Any, cost_model: Any, candidates: list[str], first_ready: dict[str, float],
                     work: dict[str, float], host_cores: float) -> dict[str, float]:
    """The warm starts of ``candidates`` (in the order given: the soonest needed first) that fit on a host of
    ``host_cores`` cores beside ``plan``'s work (see the module docstring).

    ``first_ready``: each candidate's first task's planned readiness; ``work``: its start-up's core-seconds.
    """
    a, tasks = plan.assignment, plan.tasks
    cpus = {name: float(plan.catalog[name].cpus) for name in set(a.worker_profile.values())}
    threaded = dict(zip(tasks.index, cost_model.threaded(list(tasks["kind"].astype(str)))))
    load = CpuLoad(host_cores)
    for t, row in tasks.iterrows():
        c = cpus[row["profile"]]
        load.add(row["exec_start_s"], row["exec_end_s"], min(c if threaded[t] else min(c, 1.0), host_cores))
    chosen = set(candidates)
    for w, seq in a.sequence.items():            # the start-ups of the workers pre-warm leaves as they are
        if seq and w not in chosen and bool(tasks.at[seq[0], "cold_start"]):
            first = tasks.loc[seq[0]]
            load.add(first["worker_start_s"], first["worker_start_s"] + first["startup_s"],
                     min(cpus[a.worker_profile[w]], 1.0))
    warm = {}
    for w in candidates:
        cap = min(cpus[a.worker_profile[w]], 1.0)
        at = load.place_late(work[w], cap, first_ready[w])
        if at is not None:
            warm[w] = max(0.0, at)
            continue
        first = tasks.loc[a.sequence[w][0]]       # cold, where the plan has its start-up
        load.add(first["worker_start_s"], first["worker_start_s"] + first["startup_s"], cap)
    return warm
