"""``heft``: Heterogeneous Earliest Finish Time with insertion (:func:`planning.heft.heft`).

Pools of workers per profile: ``workers_per_profile`` each (bounded), or
unbounded as on a serverless platform (``None``, the default).  Communication
between different workers is the cost model's upload of the parent's output plus
the child's download of the edge, at the SLA.  HEFT's own timeline (communication
that does not occupy workers) is kept in the notes; the plan's times are the
shared protocol's schedule of HEFT's assignment and per-worker order, so they are
comparable with every other planner and with the simulator.
"""

from __future__ import annotations

from planning.heft import heft
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.schedule import upload_bytes


@register_planner("heft")
class Heft(Planner):
    """See the module docstring."""

    def __init__(self, *, workers_per_profile: int | None = None) -> None:
        self.workers_per_profile = workers_per_profile

    def plan(self, workflow, catalog, cost_model, sla) -> Plan:
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        out = {t: upload_bytes(workflow, t) for t in workflow.task_ids}

        def comm_s(parent: str, child: str) -> float:
            return float(cost_model.transfer_s(out[parent], "upload", sla)
                         + cost_model.transfer_s(float(workflow.edge_bytes(parent, child)), "download", sla))

        result = heft(workflow, estimates.exec_s, list(estimates.profiles), comm_s,
                      workers_per_profile=self.workers_per_profile)
        plan = Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, result.worker_of,
                                    result.worker_profile, planner=self.name, params=self.params,
                                    sequence=result.sequence)
        plan.notes.append(f"HEFT's own makespan (communication off the workers): {result.makespan_s:.6g} s")
        return plan
