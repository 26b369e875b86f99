"""``planlab calibrate FILES... --out platform.toml``: fit platform overheads to real executions.

Replays each real execution (WfFormat ``.json`` or ``.json.gz``) with the ``recorded``
pseudo-planner and fits the workflow system's overhead terms so simulated makespans match
the recorded ones: which terms, chosen by inner cross-validation (a term that does not
predict held-out sizes better is dropped); with few sizes, starting from the prior shipped
for the workflow system; one platform per machine family when the executions ran on
several.  Prints the median relative makespan error before fitting, after, and held out
(each size predicted by a calibration on the application's other sizes), beside the
analytic baselines held out the same way, and writes the fitted platform for
``planlab simulate --platform``.
"""

from __future__ import annotations

import argparse

from experiments.cli import print_json
from planning.errors import ConfigError
from simulator import calibrate
from simulator.calibration import CalibrationResult

_BASELINE_LABELS = {"replay": "replay, no overheads", "critical_path_startup": "critical path + start-up",
                    "four_term": "four-term formula"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit platform overheads to real executions", description=__doc__)
    inputs = p.add_argument_group("what to calibrate on")
    inputs.add_argument("files", nargs="+", help="WfFormat files of real executions (.json or .json.gz)")
    inputs.add_argument("--planner", default="recorded", help="planner that replays them (default: recorded)")
    fitting = p.add_argument_group("the fit")
    fitting.add_argument("--fit", help="comma-separated platform terms to fit, all of them (default: the "
                         "workflow-system terms, chosen by inner cross-validation)")
    fitting.add_argument("--prior", default="default", help="'default' (shipped for the workflow system), 'none', "
                         "or a platform TOML to start from when few sizes are known")
    fitting.add_argument("--no-families", action="store_true", help="one platform for all machine families")
    fitting.add_argument("--max-evaluations", type=int, help="simulations per fit for a final Nelder-Mead polish "
                         "(default: none)")
    output = p.add_argument_group("output")
    output.add_argument("--out", help="write the fitted platform as TOML to this file")
    output.add_argument("--no-held-out", action="store_true", help="skip the held-out (leave-one-size-out) error")
    output.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def fit_terms(text: str | None) -> tuple[str, ...] | None:
    """``--fit a,b`` as a tuple (None when not given)."""
    return tuple(s.strip() for s in text.split(",") if s.strip()) if text else None


def run(args: argparse.Namespace) -> int:
    if args.max_evaluations is not None and args.max_evaluations < 1:
        raise ConfigError(f"--max-evaluations must be >= 1, got {args.max_evaluations}", "give a positive number")
    result = calibrate(args.files, planner=args.planner, fit=fit_terms(args.fit), held_out=not args.no_held_out,
                       max_evaluations=args.max_evaluations, prior=args.prior, families=not args.no_families)
    if args.out:
        write_platform(result, args.out)
    if args.json:
        summary = result.summary()
        if args.out:
            summary["out"] = args.out
        print_json(summary)
        return 0
    print_report(result)
    if args.out:
        print(f"platform written to {args.out}")
    return 0


def write_platform(result: CalibrationResult, path: str) -> None:
    """The application's platform as TOML; the errors, kept terms and family platforms as comments."""
    lines = [f"fitted by planlab calibrate on {len(result.table)} execution(s): median relative makespan error "
             f"{result.error_before:.3f} before, {result.error_after:.3f} after, {result.held_out_error:.3f} held out",
             f"kept terms: {', '.join(result.kept) or 'none'}"]
    for family, platform in result.families.items():
        values = ", ".join(f"{k} = {getattr(platform, k):.6g}" for k in result.fitted)
        lines.append(f"machine family {family}: {values}")
    result.platform.to_toml(path, comment="\n".join(lines))


def print_report(result: CalibrationResult) -> None:
    print(f"kept terms     {', '.join(result.kept) or 'none'}  (chosen by inner cross-validation; "
          f"prior {'used' if result.prior is not None else 'not used'})")
    print(f"error before   {result.error_before:.4f}  (median |simulated - real| / real, no overheads)")
    print(f"error after    {result.error_after:.4f}")
    print(f"held-out error {result.held_out_error:.4f}  (each size predicted from its application's other sizes)")
    for name, error in result.baselines_held_out.items():
        print(f"  baseline {_BASELINE_LABELS.get(name, name):<26} held out {error:.4f}")
    for name in result.fitted:
        print(f"{name:<18} {getattr(result.platform, name):.6g}")
    for family, platform in result.families.items():
        print(f"machine family {family}: " + ", ".join(f"{k} {getattr(platform, k):.4g}" for k in result.fitted))
    print(result.table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
