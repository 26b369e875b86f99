"""``planlab calibrate FILES... --planner recorded --out platform.toml``: fit platform overheads.

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
    p.add_argument("files", nargs="+", help="WfFormat JSON files of real executions")
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
