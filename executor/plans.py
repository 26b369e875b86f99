"""Plans from an explicit assignment, for tests, benchmarks and hand-made experiments.

Planners choose the assignment; sometimes a researcher wants to *give* one
("these tasks on this worker, that worker on ``small``") and still get a timed,
validated :class:`planning.plan.Plan` the executor and simulator accept.  The
timing is the planner's own analytical schedule under the cost model's priors
(or a fitted model).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from planning.costs.cost_model import CostModel
from planning.plan import Plan
from planning.profiles import Catalog, load_catalog
from planning.sla import SLA
from planning.workflow import Workflow

__all__ = ["assigned_plan", "dynamic_plan"]


def assigned_plan(workflow: Workflow, worker_of: Mapping[str, str], profile: str | Mapping[str, str] = "medium", *,
                  catalog: str | Catalog = "local", sla: str = "mean", cost_model: CostModel | None = None,
                  sequence: Mapping[str, list[str]] | None = None) -> Plan:
    """A static plan running each task on ``worker_of[task]``; ``profile``: one for all, or per worker."""
    cat = load_catalog(catalog)
    model = cost_model or CostModel()
    level = SLA.parse(sla)
    workers = dict.fromkeys(worker_of[t] for t in workflow.topological_order())
    profiles = {w: (profile if isinstance(profile, str) else profile[w]) for w in workers}
    estimates = model.estimate_workflow(workflow, cat, level)
    return Plan.from_assignment(workflow, cat, estimates, model, level, worker_of, profiles,
                                planner="assigned", sequence=sequence)


def dynamic_plan(workflow: Workflow, profile: str = "medium", *, catalog: str | Catalog = "local",
                 sla: str = "mean") -> Plan:
    """A WUKONG-style dynamic plan: placement decided at run time by the protocol's dynamic rules.

    Its (predicted) assignment is one worker per task chain, all on ``profile``.
    """
    from planning.planners.uniform import locality_workers

    plan = assigned_plan(workflow, locality_workers(workflow), profile, catalog=catalog, sla=sla)
    return replace(plan, dynamic=True, planner="dynamic")
