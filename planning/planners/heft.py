"""``heft``: Heterogeneous Earliest Finish Time with insertion (:func:`planning.heft.heft`).

Pools of workers per profile: ``workers_per_profile`` each (bounded), or
unbounded as on a serverless platform (``None``, the default), or sized to the
host the plan will run on: ``host_cores`` (a number, or ``"local"`` for this
machine) gives each profile ``max(1, floor(host_cores / cpus))`` workers, so no
profile's pool asks for more CPUs at once than the host has.  Communication
between different workers is the cost model's upload of the parent's output plus
the child's download of the edge, at the SLA (computed for every edge at once);
a worker's first task pays the profile's cold start-up at the SLA.  HEFT's own
timeline (communication that does not occupy workers) is kept in the notes; the
plan's times are the shared protocol's schedule of HEFT's assignment and
per-worker order, so they are comparable with every other planner and with the
simulator.
"""

from __future__ import annotations

import numpy as np

from planning.errors import PlanError
from planning.heft import heft
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.schedule import ScheduleEvaluator


def edge_comm_s(evaluator: ScheduleEvaluator, cost_model, sla) -> dict[tuple[str, str], float]:
    """Seconds to move each edge between two workers: upload of the parent's output plus download of the edge.

    All edges at once (the cost model is vectorised), read from the evaluator's index lists.
    """
    ids, out = evaluator.ids, evaluator.out_bytes
    pairs = [(ids[p], ids[i]) for i, ps in enumerate(evaluator.parents) for p in ps]
    if not pairs:
        return {}
    up = np.atleast_1d(cost_model.transfer_s(
        np.array([out[p] for ps in evaluator.parents for p in ps], dtype=float), "upload", sla))
    down = np.atleast_1d(cost_model.transfer_s(
        np.array([b for sizes in evaluator.in_edge_bytes for b in sizes], dtype=float), "download", sla))
    return dict(zip(pairs, (up + down).tolist()))


def memory_fits(workflow, catalog, profiles: list[str]) -> np.ndarray:
    """tasks x profiles: whether the profile has the memory the task needs (a task fitting none is an error)."""
    need = np.array([float(workflow.task(t).memory_mb or 0.0) for t in workflow.topological_order()])
    have = np.array([catalog[p].memory_mb for p in profiles], dtype=float)
    fits = need[:, None] <= have[None, :]
    if not fits.any(axis=1).all():
        i = int(np.argmin(fits.any(axis=1)))
        raise PlanError(f"task {workflow.topological_order()[i]!r} needs {need[i]:g} MB, more than any profile of "
                        f"catalog {catalog.name!r} has", "add a larger profile to the catalog")
    return fits


@register_planner("heft")
class Heft(Planner):
    """See the module docstring."""

    def __init__(self, *, workers_per_profile: int | None = None, host_cores: float | str | None = None) -> None:
        if workers_per_profile is not None and host_cores is not None:
            raise PlanError("planner 'heft': give workers_per_profile or host_cores, not both",
                            "drop one of the two parameters")
        self.workers_per_profile = workers_per_profile
        self.host_cores = _host_cores(host_cores)

    def plan(self, workflow, catalog, cost_model, sla) -> Plan:
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        evaluator = ScheduleEvaluator.for_cost_model(workflow, catalog, cost_model, sla)
        profiles = list(estimates.profiles)
        allowed = memory_fits(workflow, catalog, profiles)
        pools = self.workers_per_profile
        if self.host_cores is not None:
            pools = [max(1, int(self.host_cores // catalog[p].cpus)) for p in profiles]
        result = heft(workflow, estimates.exec_s, profiles, edge_comm_s(evaluator, cost_model, sla),
                      workers_per_profile=pools,
                      startup_s=[evaluator.startup_of(p) for p in profiles], allowed=allowed)
        plan = Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, result.worker_of,
                                    result.worker_profile, planner=self.name, params=self.params,
                                    sequence=result.sequence, evaluator=evaluator)
        plan.notes.append(f"HEFT's own makespan (communication off the workers): {result.makespan_s:.6g} s")
        return plan


def _host_cores(value: float | str | None) -> float | None:
    """``host_cores`` as a number of cores: ``"local"`` is this machine's usable cores."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "local":
        import os

        try:
            return float(len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            return float(os.cpu_count() or 1)
    try:
        cores = float(value)
    except (TypeError, ValueError):
        cores = float("nan")
    if not (cores > 0 and cores != float("inf")):
        raise PlanError(f"planner 'heft': host_cores must be a positive number or 'local', got {value!r}",
                        "e.g. --param host_cores=local or host_cores=2")
    return cores
