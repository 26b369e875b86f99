"""``planlab report DIR``: redraw every figure of a results directory from its saved tables, and its HTML page."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from experiments.report import Report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="figures (PNG, SVG) and an HTML page from a results directory",
                       description=__doc__)
    p.add_argument("results", help="a directory written by 'planlab run'")
    p.add_argument("--out", help="where to write the report (default: RESULTS/report)")
    p.add_argument("--json", action="store_true", help="print the figure paths as JSON")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if any figure or table could not be drawn (by default it becomes a note in the page)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from experiments.report import format_table, make_report, report_json
    from experiments.results import load_results

    report = make_report(args.results, args.out)
    if args.json:
        print(report_json(report))
    else:
        print(format_table(load_results(args.results).summary))
        print(f"{len(report.figures)} figure(s) (PNG and SVG) in {report.index.parent / 'figures'}")
        print(f"report: {report.index}")
    return failure_status(report, args.strict)


def failure_status(report: Report, strict: bool) -> int:
    """Name each figure or table that failed on stderr; 1 if any did and ``strict``, else 0."""
    for name, error in report.failed.items():
        print(f"report: {name} not drawn: {error} (a note in the page says so)", file=sys.stderr)
    return 1 if strict and report.failed else 0
