"""``planlab execute WORKFLOW --planner NAME --catalog C --sla S``: plan, then run the plan for real.

The plan is made as ``planlab plan`` makes it, then executed on real worker
processes with their profiles' CPU and memory limits (cgroups where permitted)
through an embedded Redis-protocol server, or the server at ``--redis-url``.
Tasks without code (WfFormat executions) are replayed: they burn CPU for their
recorded runtime times ``--scale`` and move their recorded bytes times
``--bytes-scale``; the workflow is scaled before it is planned, so the plan (and
``planned_makespan_s``) is of the same scaled run.  ``--history-out`` appends the run's metrics to a history
file, so the next ``planlab plan --history`` learns from it; ``--save-run DIR`` saves the plan, trace,
workflow, settings, cost model and host load for calibration (``planlab calibrate --traces DIR``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from executor.settings import ExecutorSettings
from experiments.cli import print_json
from experiments.commands.plan import add_planning_arguments, add_protocol_argument
from experiments.live.session import LIVE_METRICS, add_live_arguments, live_session, simulated_at_sla


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("execute", help="plan a workflow and run the plan for real", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_planning_arguments(p)
    add_protocol_argument(p)
    p.add_argument("--redis-url", help="use this server (redis://:PASSWORD@HOST:PORT/DB) instead of an embedded one")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the workers as Ray actors on the cluster at ADDRESS (else $RAY_ADDRESS or a local Ray; "
                        "the ray extra); its nodes must reach --redis-url")
    p.add_argument("--scale", type=float, default=1.0, help="replay tasks burn runtime x SCALE seconds of CPU")
    p.add_argument("--bytes-scale", type=float, default=1.0, help="replay outputs are recorded bytes x this")
    p.add_argument("--max-replay-bytes", type=int, default=ExecutorSettings.max_replay_bytes,
                   help="cap on one replayed output, bytes")
    p.add_argument("--metrics", help="metrics upload: end, task, seconds:N or records:N "
                                     f"(default end; {LIVE_METRICS} with --live)")
    p.add_argument("--no-limits", action="store_true", help="do not enforce CPU/memory limits")
    p.add_argument("--keep-keys", action="store_true", help="leave the run's keys on the server (debugging)")
    p.add_argument("--timeout", type=float, default=0.0, help="fail the run after this many seconds (0: none)")
    p.add_argument("--task-timeout", type=float, default=0.0,
                   help="kill a task's worker after this many seconds (0: 10x its planned time, at least 60 s)")
    p.add_argument("--max-task-kills", type=int, default=ExecutorSettings.max_task_kills,
                   help="re-run a dead worker's tasks until one task killed its worker more than this often")
    p.add_argument("--retry-on", action="append", default=[], metavar="EXCEPTION",
                   help="retry a task raising this exception class (transient errors; repeatable)")
    p.add_argument("--insecure", action="store_true",
                   help="accept a --redis-url on another host without a password (trusted networks only)")
    p.add_argument("--history-out", help="append this run's metrics to a Parquet history file")
    p.add_argument("--trace-out", help="save the run's Trace (Parquet + JSON) in this directory")
    p.add_argument("--save-run", help="save everything calibration needs (plan, trace, settings...) in this new folder")
    p.add_argument("--wfformat-out", metavar="FILE", help="write the real run as a WfFormat 1.5 instance, validated")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_live_arguments(p)
    p.set_defaults(handler=run)


def _shown(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _executor(args: argparse.Namespace, settings: ExecutorSettings) -> Any:
    """The local executor, or with ``--ray`` the one whose workers are Ray actors (:mod:`executor.launcher.ray_launcher`)."""
    if args.ray is None:
        from executor import Executor

        return Executor(args.redis_url, settings, insecure=args.insecure)
    from executor.launcher.ray_launcher import RayExecutor

    return RayExecutor(args.redis_url, settings, address=args.ray or None, insecure=args.insecure)


def run(args: argparse.Namespace) -> int:
    from experiments.commands.plan import make_plan
    from experiments.hostload import measured_run
    from experiments.live.hub import run_watched
    from experiments.pipeline import execute_cell
    from experiments.saved_runs import check_new_run_dir
    from planning.sources.wfformat_export import check_export_possible

    if args.wfformat_out:
        check_export_possible(args.wfformat_out)    # before the run, not after it
    if args.save_run:
        check_new_run_dir(args.save_run)
    # the workflow itself is scaled (as a config's scale does), so plan and run are of the same workflow
    cell = make_plan(args, scale=args.scale, data_scale=args.bytes_scale)
    workflow, plan, model, sla = cell.workflow, cell.plan, cell.cost_model, cell.sla
    settings = _settings(args)
    with live_session(args) as hub, _executor(args, settings) as ex:
        if hub is None:
            result, host = execute_cell(cell, ex)
        else:
            simulated = simulated_at_sla(workflow, plan, model, sla, cell.protocol)
            result, host = measured_run(lambda: run_watched(hub, ex, workflow, plan, protocol=cell.protocol,
                                                            simulated_makespan_s=simulated))
    _write_outputs(args, cell, settings, result, host)
    trace = result.trace
    summary = {"workflow": workflow.name, "planner": plan.planner, "sla": sla.name, "run_id": result.meta["run_id"],
               "makespan_s": trace.makespan_s, "planned_makespan_s": plan.makespan_s, "tasks": int(len(trace.tasks)),
               "workers": int(len(trace.workers)), "cold_starts": trace.cold_starts,
               "warm_starts": result.meta["warm_starts"], "cost": trace.cost, "planned_cost": plan.cost,
               "limits_enforced": result.meta["limits_enforced"], "redis": result.meta["redis"], **host.columns(),
               "results": {k: _shown(v) for k, v in result.results.items()}}
    if args.json:
        print_json(summary)
        return 0
    _print_summary(args, summary)
    return 0


def _settings(args: argparse.Namespace) -> ExecutorSettings:
    """The executor's settings from the command line (the workflow is scaled before planning, so the run is 1:1)."""
    return ExecutorSettings(scale=1.0, bytes_scale=1.0,
                            max_replay_bytes=args.max_replay_bytes,
                            metrics=args.metrics or (LIVE_METRICS if args.live else "end"),
                            limits=not args.no_limits, keep_keys=args.keep_keys, run_timeout_s=args.timeout,
                            task_timeout_s=args.task_timeout, max_task_kills=args.max_task_kills,
                            retry_on=tuple(args.retry_on))


def _write_outputs(args: argparse.Namespace, cell: Any, settings: ExecutorSettings, result: Any, host: Any) -> None:
    """The files the options ask for: the saved run, the history (appended), the trace, its WfFormat export."""
    from experiments.hostload import add_host_columns
    from experiments.saved_runs import cli_workflow_reference, save_run
    from planning.costs.history import concat_histories, load_history, save_history
    from planning.sources.wfformat_export import export_trace

    workflow, trace = cell.workflow, result.trace
    if args.save_run:
        reference = dataclasses.replace(cli_workflow_reference(args.workflow), scale=args.scale,
                                        data_scale=args.bytes_scale)
        save_run(args.save_run, workflow=workflow, workflow_ref=reference, plan=cell.plan,
                 trace=trace, cost_model=cell.cost_model, settings=settings, sla=cell.sla,
                 catalog_spec=args.catalog, phase="execute",
                 cost_model_history=load_history(args.history) if args.history else None)
    if args.history_out:
        history = add_host_columns(result.history(workflow), host)
        out = Path(args.history_out)
        if out.exists():
            history = concat_histories([load_history(out), history])
        save_history(history, out)
    if args.trace_out:
        trace.save(args.trace_out)
    if args.wfformat_out:
        export_trace(workflow, trace, args.wfformat_out)


def _print_summary(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """The run's summary for a person: one line per figure, then each sink's result and where files went."""
    limits = summary["limits_enforced"]
    for key in ("workflow", "planner", "sla", "run_id", "makespan_s", "planned_makespan_s", "tasks", "workers",
                "cold_starts", "warm_starts", "cost", "planned_cost", "redis", "host_load_1m", "cpu_probe_s"):
        print(f"{key:<18} {summary[key]}")
    print(f"{'limits_enforced':<18} cpu={limits['cpu']} memory={limits['memory']} threads={limits['threads']}")
    for sink, shown in summary["results"].items():
        print(f"result {sink}: {shown}")
    if args.history_out:
        print(f"history appended to {args.history_out}", file=sys.stderr)
    if args.save_run:
        print(f"run saved to {args.save_run}", file=sys.stderr)
