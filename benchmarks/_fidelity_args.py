"""The fidelity benchmark's command line: its flags, their defaults under ``--quick``, and their checks."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from _fidelity_predict import CALIBRATIONS
from _fidelity_runs import PLANNERS, WORKFLOWS, planner_from_spec
from experiments.config import DEFAULT_PROFILE_REPETITIONS
from planning.errors import PlanlabError
from planning.sla import SLA

def parse_args(argv: list[str] | None, description: str, results: Path) -> argparse.Namespace:
    """The flags of ``bench_fidelity.py`` (``results``: the default ``--out``), completed and checked."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="one planner, 20-task sizes, 2+2 repetitions (not recorded)")
    p.add_argument("--calibration", default="host",
                   help="comma-separated, the first is the headline: host (default, as planlab run forecasts): the "
                        "host model fitted by calibrate_on_runs; none: the cost model's default platform; "
                        "host-defaults: the same on this machine's cores.  Several forecast the same real runs side "
                        "by side")
    p.add_argument("--background", choices=("fit", "none", "load"), default="fit",
                   help="other work on the host (--calibration host): fitted with the host terms (default, as "
                        "planlab run does), none, or the 1-minute load before the runs (it counts this "
                        "benchmark's own earlier runs too)")
    p.add_argument("--calibration-scope", choices=("workflow", "cell"), default="workflow",
                   help="calibrate on all of a workflow's calibration runs (default) or on each plan's own")
    p.add_argument("--repetitions", type=int, default=None,
                   help="real runs per plan, even: half calibrate, half forecast (default 4)")
    p.add_argument("--sizes", default=None, help="task counts of fork_join and random_layered (default 20,100,500)")
    p.add_argument("--planners", default=None,
                   help=f"comma-separated NAME or NAME:key=value;key=value, e.g. heft:host_cores=local "
                        f"(default {','.join(PLANNERS)}; quick uniform)")
    p.add_argument("--slas", default="mean,p95", help="comma-separated SLAs (default mean,p95)")
    p.add_argument("--workflows", default=",".join(WORKFLOWS), help=f"comma-separated (default {','.join(WORKFLOWS)})")
    p.add_argument("--profile-repetitions", type=int, default=DEFAULT_PROFILE_REPETITIONS,
                   help="profile runs per workflow and profile, interleaved (default: planlab run's, 3)")
    p.add_argument("--replications", type=int, default=None,
                   help="Monte Carlo replications per plan (default 100; quick 50)")
    p.add_argument("--coverage-replications", type=int, default=None,
                   help="Monte Carlo replications for the coverage study's percentiles (default 400; quick 200)")
    p.add_argument("--coverage-workflow", default="five_branches", help="whose first plan the coverage study runs")
    p.add_argument("--coverage-runs", type=int, default=None, help="real runs of one plan for SLA coverage, forecast in two cross-fitted folds "
                                                          "(default 200; quick 6)")
    p.add_argument("--save-runs", type=Path, default=None, metavar="DIR",
                   help="also keep the real runs (traces, plans, profile history) in DIR")
    p.add_argument("--from-runs", type=Path, nargs="+", default=None, metavar="DIR",
                   help="forecast the runs saved in DIR instead of running anything (workflow, planner, "
                        "repetition and coverage flags are then those of the saved runs); several folders "
                        "combine, a workflow or coverage study of a later one replacing an earlier one's")
    p.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                   help="processes forecasting workflows at once, after the real runs (default min(4, cores))")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=results, help=f"where to write the JSON (default {results})")
    args = p.parse_args(argv)
    _complete(args, p)
    return args


def _complete(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """Fill the defaults that depend on ``--quick`` and check every flag (``p.error``: one line, exit 2)."""
    quick = args.quick
    args.repetitions = args.repetitions if args.repetitions is not None else 4
    args.sizes = _ints(args.sizes or ("20" if quick else "20,100,500"), "--sizes", p)
    args.planners = _names(args.planners or ("uniform" if quick else ",".join(PLANNERS)))
    args.workflows = _names(args.workflows)
    args.calibration = list(dict.fromkeys(_names(args.calibration)))
    bad = [c for c in args.calibration if c not in CALIBRATIONS] or ([] if args.calibration else ["(none)"])
    if bad:
        p.error(f"unknown --calibration {bad[0]!r}: use {', '.join(CALIBRATIONS)} (comma-separated)")
    args.replications = args.replications if args.replications is not None else (50 if quick else 100)
    if args.coverage_replications is None:
        args.coverage_replications = 200 if quick else 400
    args.coverage_runs = args.coverage_runs if args.coverage_runs is not None else (6 if quick else 200)
    if args.repetitions < 2 or args.repetitions % 2:
        p.error(f"--repetitions must be an even number >= 2 (half calibrate, half forecast), got {args.repetitions}")
    for flag, value in (("--profile-repetitions", args.profile_repetitions), ("--replications", args.replications),
                        ("--coverage-replications", args.coverage_replications), ("--jobs", args.jobs)):
        if value < 1:
            p.error(f"{flag} must be >= 1, got {value}")
    if args.coverage_runs < 0:
        p.error(f"--coverage-runs must be >= 0, got {args.coverage_runs}")
    try:
        args.slas = [SLA.parse(s) for s in _names(args.slas)]
        for spec in args.planners:
            planner_from_spec(spec)
    except PlanlabError as exc:
        p.error(exc.one_line())
    unknown = [w for w in args.workflows if w not in WORKFLOWS and not w.startswith("gen:") and ":" not in w
               and not w.endswith(".json")]
    if unknown:
        p.error(f"unknown workflow {unknown[0]!r}: use {', '.join(WORKFLOWS)}, gen:NAME:k=v, file.py:name "
                "or a JSON file")
    if args.coverage_runs and args.from_runs is None and args.coverage_workflow not in args.workflows:
        p.error(f"--coverage-workflow {args.coverage_workflow!r} is not among --workflows: add it, "
                "or --coverage-runs 0")
    if args.from_runs is not None and args.save_runs is not None:
        p.error("--from-runs and --save-runs exclude each other: the runs of --from-runs are saved already")


def _ints(text: str, flag: str, p: argparse.ArgumentParser) -> list[int]:
    try:
        values = [int(v) for v in _names(text)]
    except ValueError:
        p.error(f"{flag} must be comma-separated integers, got {text!r}")
    if not values or min(values) < 3:
        p.error(f"{flag} must be integers >= 3, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]
