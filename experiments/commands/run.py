"""``planlab run CONFIG [--out DIR]``: run an experiment's matrix (resumable), then write its report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.commands.report import failure_status
from experiments.live.session import LIVE_METRICS, add_live_arguments, live_session

if TYPE_CHECKING:
    import pandas as pd


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an experiment config (workflows x planners x SLAs x repetitions)",
                       description=__doc__)
    p.add_argument("config", help="experiment TOML, e.g. experiments/configs/quickstart.toml")
    p.add_argument("--out", help="results directory (default: results/NAME); an unfinished run there is resumed")
    p.add_argument("--fresh", action="store_true", help="delete earlier results in --out and start over")
    p.add_argument("--no-report", action="store_true", help="only run; write the report later with 'planlab report'")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if a report figure or table could not be drawn (by default it becomes a note)")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the cells as Ray tasks (the ray extra): on the cluster at ADDRESS (HOST:6379, auto), "
                        "else on $RAY_ADDRESS or a local Ray; overrides [run] backend")
    add_live_arguments(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from experiments.config import load_config
    from experiments.report_tables import format_table
    from experiments.runner import Engines, run_experiment

    config = load_config(args.config)
    out = Path(args.out) if args.out else Path("results") / config.name
    campaign = ray_campaign(args, config)
    with live_session(args) as hub:
        engines = None
        if hub is not None:
            from experiments.live.engines import watched_engines

            engines = watched_engines(Engines.for_config(config), hub, metrics=LIVE_METRICS)
        outcome = run_experiment(config, out, fresh=args.fresh, progress=not args.no_progress, engines=engines,
                                 ray=campaign)
    print(f"{config.name}: {outcome.cells_run} cell(s) run, {outcome.cells_skipped} already done, "
          f"{outcome.wall_s:.1f} s; results in {outcome.root}")
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    print(format_table(outcome.results.summary))
    for line in fidelity_lines(outcome.results.summary, outcome.root):
        print(line)
    if args.no_report:
        print(f"write the report with: planlab report {outcome.root}")
        return 0
    from experiments.report import make_report   # matplotlib: only when a report is drawn

    report = make_report(outcome.root)
    print(f"report: {report.index}")
    return failure_status(report, args.strict)


def ray_campaign(args: argparse.Namespace, config: Any) -> Any:
    """The Ray campaign ``--ray`` asks for (None: the config's ``[run]`` decides); refuses ``--live`` with Ray."""
    if args.ray is None and config.run.backend != "ray":
        return None
    from planning.errors import ConfigError

    if getattr(args, "live", False):
        raise ConfigError("--live watches runs on this machine's executor; Ray cells run elsewhere",
                          "drop --live (or --ray / [run] backend) and watch a single run with planlab execute --live")
    if args.ray is None:
        return None   # [run] backend = "ray": the runner builds the campaign from the config
    from experiments.ray_campaign import RayCampaign

    return RayCampaign(args.ray or config.run.address, config.run.host_resource, config.run.real_cells_per_host,
                       config.run.spread_real_cells)


def fidelity_lines(summary: "pd.DataFrame", root: Path) -> list[str]:
    """How close the predictions came to the real runs, in one or two lines (nothing without real runs)."""
    import json

    import numpy as np

    lines = []
    calibration = root / "host_calibration.json"
    if calibration.is_file():
        info = json.loads(calibration.read_text())
        terms = ", ".join(f"{k} {v:.3g}" for k, v in info.get("terms", {}).items())
        lines.append(f"platform calibrated on {info.get('runs')} real run(s) of this host "
                     f"({info.get('host_cores'):g} cores): {terms}")
    for column, what in (("forecast_error", "simulated (the plan at the mean)"), ("plan_error", "planned")):
        if column in summary and summary[column].notna().any():
            errors = np.abs(summary[column].dropna().to_numpy(dtype=float))
            lines.append(f"{what} vs real makespan: median error {np.median(errors):.1%}, "
                         f"p90 {np.quantile(errors, 0.9):.1%} over {len(errors)} real run(s)")
    if "real_within_predicted" in summary and "sla" in summary:
        for sla, group in summary[summary["sla"] != "mean"].groupby("sla"):
            within = group["real_within_predicted"].dropna()
            if len(within):
                lines.append(f"real makespans at or below the simulated {sla}: {int(within.sum())} of {len(within)} "
                             f"(nominal {_nominal(str(sla))})")
    return lines


def _nominal(sla: str) -> str:
    """The share of runs an SLA's percentile should cover: ``p95`` -> ``95%``."""
    return f"{sla[1:]}%" if sla.startswith("p") and sla[1:].replace(".", "", 1).isdigit() else sla
