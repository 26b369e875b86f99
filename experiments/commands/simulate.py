"""``planlab simulate WORKFLOW --planner NAME --catalog C --sla S``: plan, then simulate the plan.

Prints the deterministic simulation at the SLA and a Monte Carlo over sampled
durations (``--replications``, default 100; 0 for none): ``makespan_s`` is the
SLA statistic of the simulated makespans (the deterministic one without
replications), ``cost`` likewise of the costs.  ``--planner recorded`` replays a
real WfFormat execution and also prints its recorded makespan and the error; when
that error exceeds 25 % it says how to calibrate the platform (``planlab calibrate``),
since the default platform models none of the workflow system's overheads.
``--protocol`` simulates a worker protocol of your own (any spelling ``--planner`` takes).
"""

from __future__ import annotations

import argparse
from typing import Any

from experiments.cli import print_json
from experiments.commands.plan import add_planning_arguments, add_protocol_argument
from planning.errors import PlanlabError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulate a plan: makespan and cost at the SLA, Monte Carlo percentiles",
                       description=__doc__)
    add_planning_arguments(p)
    add_protocol_argument(p)
    p.add_argument("--replications", type=int, default=100, help="Monte Carlo replications (0: deterministic only)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo")
    p.add_argument("--processes", type=int, help="processes for the Monte Carlo (default: the CPU count)")
    p.add_argument("--platform", help="platform TOML (e.g. written by 'planlab calibrate --out')")
    p.add_argument("--trace", metavar="DIR", help="save the deterministic simulation's trace (Parquet) here")
    p.add_argument("--wfformat-out", metavar="FILE",
                   help="write the deterministic simulation as a WfFormat 1.5 instance, validated")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from experiments.commands.plan import make_plan
    from experiments.pipeline import monte_carlo_cell, simulate_cell
    from planning.sources.wfformat_export import check_export_possible, export_trace
    from simulator import Platform

    if args.replications < 0:
        raise PlanlabError(f"--replications must be >= 0, got {args.replications}", "use e.g. --replications 100")
    if args.wfformat_out:
        check_export_possible(args.wfformat_out)
    platform = Platform.from_toml(args.platform) if args.platform else None
    # pre-warm plans for the host the simulation runs on: a --platform's cores, else make_plan's default
    cell = make_plan(args, host_cores=platform.host_cores if platform is not None else None)
    workflow, plan, sla = cell.workflow, cell.plan, cell.sla
    trace = simulate_cell(cell, platform=platform)
    if args.trace:
        trace.save(args.trace)
    if args.wfformat_out:
        export_trace(workflow, trace, args.wfformat_out)
    out: dict[str, Any] = {"workflow": workflow.name, "planner": plan.planner, "sla": sla.name,
                           "planned_makespan_s": plan.makespan_s, "planned_cost": plan.cost,
                           "makespan_deterministic_s": trace.makespan_s, "cost_deterministic": trace.cost,
                           "cold_starts": trace.cold_starts, "workers": int(len(trace.workers))}
    if args.replications:
        result = monte_carlo_cell(cell, replications=args.replications, seed=args.seed, platform=platform,
                                  processes=args.processes)
        out.update(result.summary(sla))
        out["seed"] = args.seed
    else:
        out.update({"replications": 0, "makespan_s": trace.makespan_s, "makespan_mean_s": None,
                    "makespan_p50_s": None, "makespan_p95_s": None, "cost": trace.cost, "cost_mean": None})
    recorded = workflow.metadata.get("recorded_makespan_s")
    if plan.planner == "recorded" and recorded:
        out["recorded_makespan_s"] = float(recorded)
        out["relative_error"] = abs(trace.makespan_s - float(recorded)) / float(recorded)
    out["platform"] = args.platform or "from the cost model"
    hint = calibration_hint(out.get("relative_error"), args.workflow, args.platform)
    if hint:
        out["hint"] = hint
    if args.json:
        print_json(out)
        return 0
    for key, value in out.items():
        print(f"{key:<26} {value}")
    if args.trace:
        print(f"trace written to {args.trace}")
    return 0


#: A recorded execution replayed this far off (relative) says the platform needs calibrating.
LARGE_ERROR = 0.25


def calibration_hint(relative_error: float | None, workflow_spec: str, platform: str | None) -> str | None:
    """One line pointing at ``planlab calibrate`` when a replay misses its recorded makespan by > 25 %.

    Real makespans include the workflow system's dispatch, staging and start-up
    (FACTS.md: uncalibrated replays come out at about a fifth of the real one);
    the default platform has none of them, a calibrated one fits them.
    """
    if relative_error is None or relative_error <= LARGE_ERROR:
        return None
    if platform:
        return (f"the replay is {relative_error:.0%} off the recorded makespan even on {platform}: calibrate on "
                f"executions of the same workflow system (planlab calibrate FILES... --out platform.toml)")
    return (f"the replay is {relative_error:.0%} off the recorded makespan: the default platform models none of "
            f"the workflow system's overheads; fit them with 'planlab calibrate {workflow_spec} [more executions] "
            f"--out platform.toml' and rerun with --platform platform.toml")
