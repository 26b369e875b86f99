"""``planlab report DIR``: redraw every figure of a results directory from its saved tables, and its HTML page."""

from __future__ import annotations

import argparse

from experiments.report import format_table, make_report, report_json
from experiments.results import load_results


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="figures (PNG, SVG) and an HTML page from a results directory",
                       description=__doc__)
    p.add_argument("results", help="a directory written by 'planlab run'")
    p.add_argument("--out", help="where to write the report (default: RESULTS/report)")
    p.add_argument("--json", action="store_true", help="print the figure paths as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = make_report(args.results, args.out)
    if args.json:
        print(report_json(report))
        return 0
    print(format_table(load_results(args.results).summary))
    print(f"{len(report.figures)} figure(s) (PNG and SVG) in {report.index.parent / 'figures'}")
    print(f"report: {report.index}")
    return 0
