"""``planlab calibrate FILES... --out platform.toml``: fit platform overheads to real executions.

Replays each real execution (WfFormat ``.json`` or ``.json.gz``) with the ``recorded``
pseudo-planner and fits the workflow system's overhead terms so simulated makespans match
the recorded ones: which terms, chosen by inner cross-validation (a term that does not
predict held-out sizes better is dropped), and whether the simple four-term formula
(replay + start-up + delay per level + dispatch per task + staging per GB) predicts
held-out sizes better than the simulator (then it predicts, and the report says so); with few sizes, starting from the prior shipped
for the workflow system; one platform per machine family when the executions ran on
several.  Prints the median relative makespan error before fitting, after, and held out
(each size predicted by a calibration on the application's other sizes), beside the
analytic baselines held out the same way, and writes the fitted platform for
``planlab simulate --platform``.  The held-out calibrations run on all the machine's CPUs
(``PLANLAB_CALIBRATE_WORKERS=N`` to use N processes; the same report on any number).

``planlab calibrate --traces PATH... --out platform.toml`` does the same for
planlab's own executor: it fits the host terms (start-ups, the launcher, the spec
load, the host's background load) on runs saved by ``planlab execute --save-run``
or ``planlab run``, and reports the error of forecasting the held-out half of them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from experiments.cli import print_json
from planning.errors import ConfigError

if TYPE_CHECKING:
    from experiments.calibration.executions import CalibrationResult

_BASELINE_LABELS = {"replay": "replay, no overheads", "critical_path_startup": "critical path + start-up",
                    "four_term": "four-term formula"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit platform overheads to real executions", description=__doc__)
    inputs = p.add_argument_group("what to calibrate on")
    inputs.add_argument("files", nargs="*", help="WfFormat files of real executions of other workflow systems "
                        "(.json or .json.gz)")
    inputs.add_argument("--traces", nargs="+", metavar="PATH",
                        help="planlab's own real runs instead: folders saved by 'planlab execute --save-run' or "
                             "'planlab run' results folders; fits the host terms and forecasts held-out runs")
    inputs.add_argument("--planner", default="recorded", help="planner that replays them (default: recorded)")
    fitting = p.add_argument_group("the fit")
    fitting.add_argument("--fit", help="comma-separated platform terms to fit, all of them (default: the "
                         "workflow-system terms, chosen by inner cross-validation)")
    fitting.add_argument("--prior", default="default", help="'default' (shipped for the workflow system), 'none', "
                         "or a platform TOML to start from when few sizes are known")
    fitting.add_argument("--no-families", action="store_true", help="one platform for all machine families")
    fitting.add_argument("--machine-starter", action="store_true", help="also consider each machine's serial "
                         "starter (machine_dispatch_s, seconds per task and machine)")
    fitting.add_argument("--staging-split", nargs="?", const="on", default="off", choices=("off", "on", "auto"),
                         help="also consider separate staging rates for external inputs and written outputs "
                         "(stage_in_s_per_GB, stage_out_s_per_GB); 'auto': fit with and without them and keep "
                         "them when they cross-validate significantly better")
    fitting.add_argument("--background-runs", nargs="?", const="on", default="auto", choices=("off", "on", "auto"),
                         help="give each execution the number of the others already running when it was submitted "
                         "(from their recorded starts) and consider what each costs per task "
                         "(background_dispatch_s); 'auto' (default): the four-term formula takes that cost where "
                         "it cross-validates better, the simulator never; 'off': no counts")
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
    from experiments.calibration import calibrate

    if args.max_evaluations is not None and args.max_evaluations < 1:
        raise ConfigError(f"--max-evaluations must be >= 1, got {args.max_evaluations}", "give a positive number")
    if args.traces and args.files:
        raise ConfigError("give WfFormat files or --traces, not both",
                          "calibrate other systems' executions and planlab's own runs separately")
    if args.traces:
        return _run_traces(args, fit_terms(args.fit))
    if not args.files:
        raise ConfigError("nothing to calibrate on",
                          "give WfFormat execution files, or --traces with planlab's own saved runs")
    result = calibrate(args.files, planner=args.planner, fit=fit_terms(args.fit), held_out=not args.no_held_out,
                       max_evaluations=args.max_evaluations, prior=args.prior, families=not args.no_families,
                       machine_starter=args.machine_starter,
                       staging_split={"off": False, "on": True, "auto": "auto"}[args.staging_split],
                       background_runs={"off": False, "on": True, "auto": "auto"}[args.background_runs])
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
    if result.formula is not None:
        lines.append(f"model: four-term formula, chosen by inner cross-validation over the simulator "
                     f"({_scores(result)}): {_formula_text(result)}; the platform below is the simulator's fit")
    if result.slots_per_core != 1.0:
        lines.append(f"replayed with {result.slots_per_core:g} task slots per recorded core "
                     f"(planner recorded, slots_per_core = {result.slots_per_core:g})")
    for family, platform in result.families.items():
        values = ", ".join(f"{k} = {getattr(platform, k):.6g}" for k in result.fitted)
        lines.append(f"machine family {family}: {values}")
    result.platform.to_toml(path, comment="\n".join(lines))


def _scores(result: CalibrationResult) -> str:
    return ", ".join(f"{name} {score:.4f}" for name, score in result.model_scores.items())


def _formula_text(result: CalibrationResult) -> str:
    c = result.formula.coefficients_
    return (f"replay + {c['start']:.4g} s + {c['levels']:.4g} s x levels + {c['tasks']:.4g} s x tasks "
            f"+ {c['staged_GB']:.4g} s x GB staged"
            + (f" + {c['background']:.4g} s x tasks x runs already running" if "background" in c else ""))


def print_report(result: CalibrationResult) -> None:
    if result.model_scores:
        print(f"model          {'four-term formula' if result.formula is not None else 'simulator'}  (chosen by "
              f"inner cross-validation, mean relative error: {_scores(result)})")
    if result.formula is not None:
        print(f"formula        {_formula_text(result)}")
    print(f"kept terms     {', '.join(result.kept) or 'none'}  (chosen by inner cross-validation; "
          f"prior {'used' if result.prior is not None else 'not used'})")
    print(f"slots per core {result.slots_per_core:g}  (tasks each recorded core ran at once in the replays; "
          f"the workflow system's default - Makeflow 2, else 1 - unless the makespans argue otherwise)")
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
