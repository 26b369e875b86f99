"""Planners: one class per algorithm with ``plan(workflow, catalog, cost_model, sla) -> Plan``.

Registered by name so a config can say ``planner = "uniform"`` and a researcher can
add their own in a few lines::

    from planning.planners import Planner, register_planner

    @register_planner("one-worker")
    class OneWorker(Planner):
        def plan(self, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA) -> Plan:
            est = cost_model.estimate_workflow(workflow, catalog, sla)
            worker_of = {t: "w0" for t in workflow.task_ids}
            return Plan.from_assignment(workflow, catalog, est, cost_model, sla, worker_of,
                                        {"w0": catalog.fastest().name}, planner=self.name)

Any planner is also named by ``path/file.py:Class``, ``package.module:Class`` or, for
an installed package, its entry point in the ``planlab.planners`` group: see
:mod:`planning.planners.base` (one resolver, used by the CLI and the configs alike).
"""

from planning.planners.base import (PLANNER_ENTRY_POINTS, PLANNERS, PROTOCOL_ENTRY_POINTS, PROTOCOLS, Planner,
                                    default_label, get_planner, planner_names, protocol_names, register_planner,
                                    register_protocol, resolve_planner, resolve_protocol)
from planning.planners import cost_deadline, critical_path, heft, uniform  # noqa: F401  (they register themselves)
from planning.planners import recorded  # noqa: F401  (the recorded pseudo-planner)
from planning.planners import wukong  # noqa: F401

__all__ = ["PLANNER_ENTRY_POINTS", "PLANNERS", "PROTOCOL_ENTRY_POINTS", "PROTOCOLS", "Planner", "default_label",
           "get_planner", "planner_names", "protocol_names", "register_planner", "register_protocol",
           "resolve_planner", "resolve_protocol"]
