"""The report: every figure redrawn from a results directory's tables, and one HTML page.

``make_report(DIR)`` reads only what ``planlab run`` saved (Parquet tables,
provenance), so a report can be regenerated, restyled or shared long after the run,
on another machine, without re-running anything.  Figures are written as PNG (to
look at) and SVG (to publish) under ``DIR/report/figures``; ``DIR/report/index.html``
shows them with the summary table and the run's provenance.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import pandas as pd

from experiments import report_figures as rf
from experiments.results import Results, load_results

#: Columns of the compact summary table (name in the report -> summary column).
TABLE_COLUMNS = {"workflow": "workflow", "planner": "planner", "sla": "sla", "rep": "repetition",
                 "planned_s": "planned_makespan_s", "simulated_s": "simulated_makespan_s", "real_s": "real_makespan_s",
                 "plan_err_%": "plan_error", "sim_err_%": "sim_error", "planned_cost_$": "planned_cost",
                 "real_cost_$": "real_cost"}


@dataclass
class Report:
    """Where a report was written and which figures it holds (name -> PNG path)."""

    index: Path
    figures: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: planned, simulated and real makespan, errors in percent, costs."""
    cols = {name: col for name, col in TABLE_COLUMNS.items() if col in summary}
    table = summary[list(cols.values())].rename(columns={v: k for k, v in cols.items()}).copy()
    for name in ("plan_err_%", "sim_err_%"):
        if name in table:
            table[name] = 100 * table[name]
    return table.dropna(axis=1, how="all")


def format_table(summary: pd.DataFrame) -> str:
    """The summary table as fixed-width text (for the terminal and the closing note)."""
    table = summary_table(summary)
    formats = {c: (lambda v: f"{v:.3g}") for c in table.columns if c.endswith("_s")}
    formats.update({c: (lambda v: f"{v:+.1f}") for c in table.columns if c.endswith("_%")})
    formats.update({c: (lambda v: f"{v:.3g}") for c in table.columns if c.endswith("_$")})
    return table.to_string(index=False, formatters=formats, na_rep="-")


def make_report(results_dir: str | Path, out_dir: str | Path | None = None, *, max_gantt_cells: int = 4,
                max_gantt_workflows: int = 4) -> Report:
    """Draw every figure from the saved tables of ``results_dir``; write PNG + SVG and ``index.html``.

    Gantt charts are drawn for the first ``max_gantt_workflows`` workflows (each up to
    ``max_gantt_cells`` planners): one chart per task phase is slow to draw, and a
    study of many workflows reads them from the tables rather than from pictures.
    """
    results = load_results(results_dir)
    out = Path(out_dir) if out_dir is not None else Path(results_dir) / "report"
    figures_dir = out / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    report = Report(index=out / "index.html")
    sections: list[tuple[str, str, str]] = []   # (name, title, caption)

    def emit(name: str, title: str, caption: str, draw: Callable[[], object]) -> None:
        fig = draw()
        if fig is None:
            report.skipped[name] = "nothing to show"
            return
        with plt.rc_context({"svg.fonttype": "none"}):   # SVG text stays text: smaller, faster, searchable
            for ext in ("png", "svg"):
                fig.savefig(figures_dir / f"{name}.{ext}", dpi=100 if ext == "png" else None)
        plt.close(fig)
        report.figures[name] = figures_dir / f"{name}.png"
        sections.append((name, title, caption))

    s = results.summary
    emit("makespans", "Planned vs simulated vs real makespan",
         "Per workflow, planner and SLA; bars are the mean over repetitions, whiskers their min and max. "
         "Percentile SLAs' simulated values come from Monte Carlo.", lambda: rf.makespan_bars(s))
    emit("prediction_error", "Prediction error",
         "Left: each cell's relative makespan error. Right: CDF of per-task start and finish errors "
         "(predicted minus real, joined on task id).",
         lambda: rf.prediction_error(s, results.plans, results.sim_tasks, results.real_tasks))
    other, other_name = (results.real_tasks, "real") if results.has_real else (results.sim_tasks, "simulated")
    workflows = list(dict.fromkeys(s["workflow"])) if len(s) else []
    for wf in workflows[max_gantt_workflows:]:
        report.skipped[f"gantt-{_slug(wf)}"] = f"only the first {max_gantt_workflows} workflows get a Gantt chart"
    for wf in workflows[:max_gantt_workflows]:
        cells = rf.gantt_cells(s, wf, max_gantt_cells)
        emit(f"gantt-{_slug(wf)}", f"Gantt: {wf}, planned vs {other_name}",
             f"Each planner at the first SLA: the plan (left) and the {other_name} run (right) on one time axis, "
             "one row per worker, coloured by profile (thin bars: transfers).",
             lambda cells=cells: rf.gantt_pair(results.plans, other, cells, other_name, s))
    emit("cost_vs_makespan", "Cost vs makespan", "Each planner's trade-off: hollow markers planned, filled measured.",
         lambda: rf.cost_vs_makespan(s))
    emit("makespan_distributions", "Makespan distributions (percentile SLAs)",
         "Monte Carlo replications of the simulated makespan, the value at the SLA and the real repetitions (triangles).",
         lambda: rf.makespan_distributions(results.montecarlo, s))
    report.index.write_text(_html(results, sections, report.skipped))
    return report


def _html(results: Results, sections: list[tuple[str, str, str]], skipped: dict[str, str]) -> str:
    p = results.provenance
    git = p.get("git") or {}
    machine = p.get("machine") or {}
    name = p.get("config_name", results.root.name)
    facts = [("config", f"{name} (hash {str(p.get('config_hash', ''))[:12]})"),
             ("git revision", f"{git.get('revision')}{' (local changes)' if git.get('dirty') else ''}"),
             ("machine", f"{machine.get('platform')}, {machine.get('cpus')} CPUs, {machine.get('memory_gb')} GB, "
                         f"Python {machine.get('python')}"),
             ("limits the OS permits", p.get("limit_support")),
             ("limits enforced in runs", "; ".join(p.get("limits_enforced") or []) or "none recorded"),
             ("sessions", "; ".join(f"{x.get('started_utc')} - {x.get('finished_utc', '?')}: {x.get('cells_run')} cells"
                                    for x in p.get("sessions", []))),
             ("packages", ", ".join(f"{k} {v}" for k, v in (p.get("packages") or {}).items() if v)),
             ("notes", "; ".join(p.get("notes") or []) or "none")]
    table = summary_table(results.summary).to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-",
                                                   border=0, classes="summary")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>planlab report: {html.escape(str(name))}</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             "table.summary{border-collapse:collapse;font-size:13px}table.summary td,table.summary th"
             "{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}img{max-width:100%}"
             "dt{font-weight:bold}pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head><body>",
             f"<h1>planlab report: {html.escape(str(name))}</h1>",
             "<p>Every figure below was drawn from the Parquet tables in this directory alone.</p>",
             "<h2>Summary</h2>", table, "<h2>Figures</h2>"]
    for fig_name, title, caption in sections:
        parts.append(f"<h3>{html.escape(title)}</h3><p>{html.escape(caption)}</p>"
                     f"<a href='figures/{fig_name}.svg'><img src='figures/{fig_name}.png' alt='{html.escape(title)}'></a>")
    if skipped:
        parts.append("<p>Not drawn: " + html.escape("; ".join(f"{k} ({v})" for k, v in skipped.items())) + ".</p>")
    runs = results.profile_runs
    if len(runs):
        cols = [c for c in ("workflow", "profile", "repetition", "tasks", "planned_makespan_s", "real_makespan_s",
                            "real_cost") if c in runs]
        parts.append("<h2>Profile phase</h2><p>Each workflow run for real on every profile of the catalog; the cost "
                     "model the plans used was fitted on these runs' history.</p>")
        parts.append(runs[cols].to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="summary"))
    parts.append("<h2>Provenance</h2><dl>")
    parts += [f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts]
    parts.append("</dl><h2>Config</h2><pre>" + html.escape(results.config_text) + "</pre></body></html>")
    return "\n".join(parts)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def report_json(report: Report) -> str:
    return json.dumps({"index": str(report.index), "figures": {k: str(v) for k, v in report.figures.items()},
                       "skipped": sorted(report.skipped)}, indent=2)
