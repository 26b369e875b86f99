"""One cell's pipeline: plan -> simulate -> execute -> compare, the same for ``planlab run`` and the single commands.

A cell of an experiment (:func:`experiments.cell_run.run_cell`) and the single-shot
commands (``planlab plan``, ``planlab simulate``, ``planlab execute``) go through
these functions, so a plan is simulated and executed with the same worker protocol
and the same options whichever way it was asked for:

* :func:`plan_cell`: the planner's plan and the worker protocol both engines
  interpret for it (a config's ``protocol`` or ``--protocol``; the plan's own by default);
* :func:`simulate_cell` / :func:`monte_carlo_cell`: the simulation of that plan with
  that protocol (the engine functions can be passed in, as the runner's
  :class:`~experiments.runner.Engines` do);
* :func:`execute_plan` / :func:`execute_cell`: the real run between two host snapshots
  (:mod:`experiments.hostload`), with that protocol;
* :func:`relative_errors`: predicted against real (plan vs simulation without a real run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from experiments.hostload import RunHost, measured_run
from planning.costs.cost_model import CostModel
from planning.plan import Plan
from planning.planners import Planner, resolve_protocol
from planning.profiles import Catalog
from planning.protocol import WorkerProtocol
from planning.sla import SLA
from planning.trace import Trace
from planning.workflow import Workflow
from simulator import monte_carlo, simulate
from simulator.monte_carlo import MonteCarloResult

#: The protocol name meaning "the plan's own": the engines build it from the plan.
DEFAULT_PROTOCOL = "default"


@dataclass(frozen=True)
class PlannedCell:
    """A plan, what it was planned with, and the worker protocol both engines interpret for it."""

    workflow: Workflow
    plan: Plan
    cost_model: CostModel
    sla: SLA
    protocol: WorkerProtocol | None = None      # None: the plan's own (each engine's default)

    @property
    def protocol_option(self) -> dict[str, WorkerProtocol]:
        """``{"protocol": ...}`` for an engine call; empty for the plan's own protocol."""
        return {"protocol": self.protocol} if self.protocol is not None else {}


def make_protocol(name: str, workflow: Workflow, plan: Plan) -> WorkerProtocol | None:
    """The protocol ``name`` names (any spelling a planner takes), built for ``plan``; None for ``"default"``."""
    if name == DEFAULT_PROTOCOL:
        return None
    return resolve_protocol(name).for_plan(workflow, plan)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def plan_cell(planner: Planner, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA,
              protocol: str = DEFAULT_PROTOCOL, optimizations: tuple[str, ...] = (),
              host_cores: float = math.inf) -> PlannedCell:
    """Plan ``workflow`` and build the protocol the engines will interpret for the plan.

    ``optimizations`` (:mod:`planning.protocol.optimizations`) transform the plan and
    extend the protocol, and the plan is re-timed under the result; ``host_cores``: the
    cores the run's workers share (pre-warm weighs its start-ups against them; inf: unshared).
    """
    plan = planner.plan(workflow, catalog, cost_model, sla)
    if optimizations:
        return optimized_cell(plan, workflow, cost_model, sla, protocol, optimizations, host_cores)
    return PlannedCell(workflow, plan, cost_model, sla, make_protocol(protocol, workflow, plan))


def optimized_cell(plan: Plan, workflow: Workflow, cost_model: CostModel, sla: SLA, protocol: str,
                   optimizations: tuple[str, ...], host_cores: float = math.inf) -> PlannedCell:
    """``plan`` with the named optimizations, over the protocol ``protocol`` names (on ``host_cores`` shared cores)."""
    from planning.protocol.optimizations import optimize

    base = WorkerProtocol if protocol == DEFAULT_PROTOCOL else resolve_protocol(protocol)
    plan, cls = optimize(plan, workflow, cost_model, optimizations, base, host_cores=host_cores)
    return PlannedCell(workflow, plan, cost_model, sla, None if cls is WorkerProtocol else cls.for_plan(workflow, plan))


def simulate_cell(cell: PlannedCell, *, simulate_fn: Callable[..., Trace] = simulate, **options: Any) -> Trace:
    """One simulation of the cell's plan with its protocol (``options``: platform, sample, seed, run_id, warm_pool)."""
    return simulate_fn(cell.workflow, cell.plan, cell.cost_model, **options, **cell.protocol_option)


def monte_carlo_cell(cell: PlannedCell, *, monte_carlo_fn: Callable[..., MonteCarloResult] = monte_carlo,
                     **options: Any) -> MonteCarloResult:
    """Monte Carlo of the cell's plan with its protocol (``options``: replications, seed, platform, processes...)."""
    return monte_carlo_fn(cell.workflow, cell.plan, cell.cost_model, **options, **cell.protocol_option)


def execute_plan(executor: Any, workflow: Workflow, plan: Plan, *, run_id: str | None = None,
                 protocol: WorkerProtocol | None = None,
                 measure_contention: bool | None = None) -> tuple[Any, RunHost]:
    """Run ``plan`` for real on ``executor`` between two host snapshots: (the run's result, the host record).

    ``run_id``, ``protocol`` and ``measure_contention`` reach the executor only when given (None: its own
    run id, the plan's protocol, its settings' choice).
    """
    options: dict[str, Any] = {}
    if run_id is not None:
        options["run_id"] = run_id
    if protocol is not None:
        options["protocol"] = protocol
    if measure_contention is not None:
        options["measure_contention"] = measure_contention
    return measured_run(lambda: executor.run(workflow, plan, **options))


def execute_cell(cell: PlannedCell, executor: Any, *, run_id: str | None = None) -> tuple[Any, RunHost]:
    """The real run of the cell's plan with its protocol (see :func:`execute_plan`)."""
    return execute_plan(executor, cell.workflow, cell.plan, run_id=run_id, protocol=cell.protocol)


def relative_errors(row: dict[str, Any]) -> dict[str, float]:
    """(predicted - real) / real for makespan and cost; plan vs simulation when there is no real run."""
    def rel(pred: Any, ref: Any) -> float:
        try:
            pred, ref = float(pred), float(ref)
        except (TypeError, ValueError):
            return float("nan")
        return (pred - ref) / ref if ref == ref and ref > 0 and pred == pred else float("nan")

    real = row.get("real_makespan_s")
    predicted = row.get("simulated_makespan_s")
    # did the real run stay within the predicted statistic: 1.0 / 0.0, NaN without a reference like the rest
    within = float(float(real) <= float(predicted)) if _finite(real) and _finite(predicted) else float("nan")
    return {"plan_error": rel(row.get("planned_makespan_s"), real),
            "sim_error": rel(predicted, real),
            "forecast_error": rel(row.get("sim_forecast_s"), real),
            "real_within_predicted": within,
            "plan_cost_error": rel(row.get("planned_cost"), row.get("real_cost")),
            "sim_cost_error": rel(row.get("simulated_cost"), row.get("real_cost")),
            "plan_vs_sim_error": rel(row.get("planned_makespan_s"), row.get("simulated_makespan_s"))}
