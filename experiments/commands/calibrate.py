"""``planlab calibrate FILES... --planner recorded --out platform.toml``: fit platform overheads.

``planlab calibrate --traces PATH... --out platform.toml`` does the same for
planlab's own executor: it fits the host terms (start-ups, the launcher, the spec
load, the host's background load) on runs saved by ``planlab execute --save-run``
or ``planlab run``, and reports the error of forecasting the held-out half of them.

Replays each real execution (WfFormat) with the ``recorded`` pseudo-planner and
fits the workflow system's overhead terms so simulated makespans match the
recorded ones.  Prints the median relative makespan error before fitting, after
fitting, and held out (each run predicted from the other runs of its
application), and writes the fitted platform for ``planlab simulate --platform``.
"""

from __future__ import annotations

import argparse

from experiments.cli import print_json
from planning.errors import ConfigError
from simulator import calibrate


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit platform overheads to real executions", description=__doc__)
    p.add_argument("files", nargs="*", help="WfFormat JSON files of real executions (of other workflow systems)")
    p.add_argument("--traces", nargs="+", metavar="PATH",
                   help="planlab's own real runs instead: folders saved by 'planlab execute --save-run' or "
                        "'planlab run' results folders; fits the host terms and forecasts held-out runs")
    p.add_argument("--planner", default="recorded", help="planner that replays them (default: recorded)")
    p.add_argument("--fit", help="comma-separated platform terms to fit (default: the workflow-system terms)")
    p.add_argument("--out", help="write the fitted platform as TOML to this file")
    p.add_argument("--no-held-out", action="store_true", help="skip the held-out (leave-one-out) error")
    p.add_argument("--max-evaluations", type=int, help="simulations per fit (default: 60 per term + 40)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fit = tuple(s.strip() for s in args.fit.split(",") if s.strip()) if args.fit else None
    if args.max_evaluations is not None and args.max_evaluations < 1:
        raise ConfigError(f"--max-evaluations must be >= 1, got {args.max_evaluations}", "give a positive number")
    if args.traces and args.files:
        raise ConfigError("give WfFormat files or --traces, not both",
                          "calibrate other systems' executions and planlab's own runs separately")
    if args.traces:
        return _run_traces(args, fit)
    if not args.files:
        raise ConfigError("nothing to calibrate on",
                          "give WfFormat execution files, or --traces with planlab's own saved runs")
    result = calibrate(args.files, planner=args.planner, fit=fit, held_out=not args.no_held_out,
                       max_evaluations=args.max_evaluations)
    if args.out:
        result.platform.to_toml(args.out, comment=(
            f"fitted by planlab calibrate on {len(result.table)} execution(s): median relative makespan error "
            f"{result.error_before:.3f} before, {result.error_after:.3f} after, {result.held_out_error:.3f} held out"))
    summary = result.summary()
    if args.json:
        if args.out:
            summary["out"] = args.out
        print_json(summary)
        return 0
    print(f"error before   {result.error_before:.4f}  (median |simulated - real| / real, no overheads)")
    print(f"error after    {result.error_after:.4f}")
    print(f"held-out error {result.held_out_error:.4f}  (each run predicted from its application's other runs)")
    for name in result.fitted:
        print(f"{name:<18} {getattr(result.platform, name):.6g}")
    print(result.table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        print(f"platform written to {args.out}")
    return 0


def _run_traces(args: argparse.Namespace, fit: tuple[str, ...] | None) -> int:
    """``--traces``: fit the host terms on planlab's own saved runs, judged on held-out runs."""
    from experiments.calibrate_runs import calibrate_saved_runs

    kwargs = {"max_evaluations": args.max_evaluations} if args.max_evaluations is not None else {}
    result = calibrate_saved_runs(args.traces, terms=fit, hold_out=not args.no_held_out, **kwargs)
    summary = result.summary()
    if args.out:
        result.platform.to_toml(args.out, comment=(
            f"fitted by planlab calibrate --traces on {summary['runs_fitted']} real run(s); held-out median "
            f"makespan error {result.held_out_error:.3f} ({result.error_before:.3f} before fitting)"))
        summary["out"] = args.out
    if args.json:
        print_json(summary | {"runs": result.table.to_dict("records")})
        return 0
    print(f"runs           {summary['runs_fitted']} fitted, {summary['runs_held_out']} held out")
    print(f"error before   {result.error_before:.4f}  (median |forecast - real| / real of the held-out runs)")
    print(f"held-out error {result.held_out_error:.4f}  (forecast from the plan and the cost model, fitted platform)")
    print(f"fit error      {result.fit_error:.4f}  (on the runs it was fitted on)")
    for name in result.terms:
        print(f"{name:<22} {getattr(result.platform, name):.6g}")
    print(result.table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        print(f"platform written to {args.out}")
    return 0
