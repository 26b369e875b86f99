"""``planlab plan WORKFLOW --planner NAME --catalog NAME|FILE --sla STAT``: make a plan and print it."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

from experiments.cli import print_json
from planning.errors import HistoryError, PlanError

if TYPE_CHECKING:
    from experiments.pipeline import PlannedCell
    from planning.costs.cost_model import CostModel
    from planning.workflow import Workflow

#: ``--protocol``'s default, :data:`experiments.pipeline.DEFAULT_PROTOCOL` (the plan's own protocol), spelt
#: here because importing the pipeline for it would load the simulator, the cost model and pandas with
#: every ``planlab`` command's argument parser (a test keeps the two equal).
DEFAULT_PROTOCOL = "default"

WORKFLOW_HELP = ("WfFormat JSON, planlab JSON, file.py:name, gen:NAME[:k=v,...] "
                 "or gen:wfcommons:RECIPE[:tasks=N,seed=S] (e.g. gen:wfcommons:montage:tasks=500)")
#: the names ``--optimizations`` takes (planning.protocol.optimizations.optimization_names(), written out so that
#: building the parser imports nothing heavy; a test keeps the two equal)
OPTIMIZATION_NAMES = ("clustering", "delayed_io", "preload", "prewarm", "retention")

PLANNER_HELP = ("a planner: a built-in name (uniform, critical-path, wukong, heft, cost-deadline), an installed "
                "plugin's name, path/file.py:Class or package.module:Class")


def add_planning_arguments(p: argparse.ArgumentParser, planner_help: str = PLANNER_HELP) -> None:
    """The arguments every command that makes a plan takes (plan, simulate, execute)."""
    p.add_argument("workflow", help=WORKFLOW_HELP)
    p.add_argument("--planner", required=True, help=planner_help)
    p.add_argument("--catalog", default="local", help="built-in catalog (local, lambda) or a TOML file")
    p.add_argument("--sla", default="mean", help="mean, median or a percentile such as p95")
    p.add_argument("--history", help="Parquet history to fit the cost model on (default: priors only)")
    p.add_argument("--deadline", type=float, help="seconds the planned makespan must meet")
    p.add_argument("--profile", help="profile for planners that take one (uniform, wukong)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="extra planner parameter")
    p.add_argument("--optimizations", default="", metavar="A,B",
                   help="optimizations applied to the plan, comma-separated: " + ", ".join(OPTIMIZATION_NAMES)
                        + " (with the local catalog, prewarm weighs this host's cores)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="plan a workflow and print makespan, cost and bounds", description=__doc__)
    add_planning_arguments(p)
    p.add_argument("--out", help="write the plan as JSON to this file")
    p.add_argument("--wfformat-out", metavar="FILE",
                   help="write the plan (its planned schedule) as a WfFormat 1.5 instance, validated")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="bound the search of critical-path / cost-deadline: past it they return the best plan "
                        "found so far, and its notes say the budget cut the search")
    p.set_defaults(handler=run)


def fit_cost_model(history_path: str | None, workflow: Workflow) -> CostModel:
    """A cost model fitted on ``history_path``, refusing history of an unrelated workflow."""
    from planning.costs.cost_model import CostModel
    from planning.costs.history import load_history

    model = CostModel()
    if history_path is None:
        return model
    history = load_history(history_path)
    kinds = {t.kind for t in workflow.tasks}
    if len(history) and not kinds & set(history["kind"]):
        raise HistoryError(f"history {history_path!r} has no task of this workflow's kinds "
                           f"({', '.join(sorted(kinds)[:5])}...): it is history of another workflow",
                           "give history recorded for this workflow, or omit --history to use priors")
    return model.fit(history)


def _parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise PlanError(f"--param {item!r} is not KEY=VALUE", "write e.g. --param tolerance=0.05")
        try:
            params[key] = float(raw) if any(c in raw for c in ".eE") else int(raw)
        except ValueError:
            params[key] = raw
    return params


def make_plan(args: argparse.Namespace, *, scale: float = 1.0, data_scale: float = 1.0,
              host_cores: float | None = None) -> PlannedCell:
    """Load the workflow, fit the cost model, plan and build the ``--protocol``, from the command's arguments.

    The first stage of the cell pipeline (:func:`experiments.pipeline.plan_cell`), as a
    config's cell runs it.  ``scale`` / ``data_scale`` shrink replay tasks' runtimes and
    bytes *before* planning (as a config's ``scale`` does), so a scaled real run is
    compared with a plan of the same scaled workflow, not of the original.

    ``host_cores``: the cores the run's workers share, which pre-warm weighs its start-ups
    against (:func:`planning.protocol.optimizations.prewarm_plan`).  By default, with the
    ``local`` catalog, this machine's (planlab's executor runs a local plan here, as an
    experiment cell does); with any other catalog, none (a machine per worker).  So
    ``planlab plan --optimizations prewarm`` shows the plan ``planlab execute`` runs.
    """
    from experiments.config import scaled_workflow
    from experiments.pipeline import plan_cell
    from planning.planners import get_planner
    from planning.profiles import load_catalog
    from planning.sla import SLA
    from planning.sources.loading import load_workflow
    from simulator.platform import local_cores

    for flag, value in (("--scale", scale), ("--bytes-scale", data_scale)):
        if not (value > 0 and value != float("inf")):
            raise PlanError(f"{flag} must be a positive number, got {value}", f"use e.g. {flag} 0.01")
    workflow = scaled_workflow(load_workflow(args.workflow), scale, data_scale)
    catalog = load_catalog(args.catalog)
    sla = SLA.parse(args.sla)
    params = _parse_params(args.param)
    if args.deadline is not None:
        params["deadline"] = args.deadline
    if args.profile is not None:
        params["profile"] = args.profile
    if getattr(args, "time_budget", None) is not None:      # only `planlab plan` has --time-budget
        params["time_budget"] = args.time_budget
    planner = get_planner(args.planner, **params)
    model = fit_cost_model(args.history, workflow)
    optimizations = tuple(n.strip() for n in args.optimizations.split(",") if n.strip())
    if host_cores is None:
        host_cores = float(local_cores()) if catalog.name == "local" else math.inf
    cell = plan_cell(planner, workflow, catalog, model, sla, getattr(args, "protocol", DEFAULT_PROTOCOL), optimizations,
                     host_cores)
    if catalog.name == "local":    # planlab's executor runs a local plan on this machine: say if it is too big
        note = cell.plan.capacity_note(float(local_cores()))
        if note is not None:
            cell.plan.notes.append(note)
    return cell


def add_protocol_argument(p: argparse.ArgumentParser) -> None:
    """``--protocol``: the worker protocol the engine interprets (simulate, execute)."""
    p.add_argument("--protocol", default=DEFAULT_PROTOCOL,
                   help="worker protocol: default, a registered or installed name, path/file.py:Class or module:Class")


def run(args: argparse.Namespace) -> int:
    from planning.sources.wfformat_export import check_export_possible, export_plan

    if args.wfformat_out:
        check_export_possible(args.wfformat_out)
    cell = make_plan(args)
    workflow, plan = cell.workflow, cell.plan
    if args.out:
        plan.to_json(args.out)
    if args.wfformat_out:
        export_plan(workflow, plan, args.wfformat_out)
    summary = plan.summary()
    summary["lower_bounds"] = plan.lower_bounds
    if args.json:
        print_json(summary)
        return 0
    for key, value in summary.items():
        print(f"{key:<14} {value}")
    if args.out:
        print(f"plan written to {args.out}")
    if args.wfformat_out:
        print(f"WfFormat instance written to {args.wfformat_out}")
    return 0
