"""The report: every figure and table redrawn from a results directory's saved tables, on one HTML page.

``make_report(DIR)`` reads only what ``planlab run`` saved (Parquet tables,
provenance), so a report can be regenerated, restyled or shared long after the run,
on another machine, without re-running anything.  Figures are written as PNG (to
look at) and SVG (to publish) under ``DIR/report/figures``; ``DIR/report/index.html``
shows them with the tables, the "what to look at" findings and the provenance.

The report always completes: each figure and table is computed in isolation, and one
that fails becomes a visible note on the page naming it and its error
(:attr:`Report.failed`); ``planlab report --strict`` turns such a note into exit 1.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import matplotlib.pyplot as plt
import pandas as pd

from experiments import phases as ph
from experiments import report_figures as rf
from experiments import report_study_figures as sf
from experiments import report_tables as rt
from experiments.report_tables import TABLE_COLUMNS, format_table, summary_table  # noqa: F401 - re-exported
from experiments.report_findings import what_to_look_at
from experiments.report_html import figure_block, note_block, render_page, table_block, text_block
from experiments.results import Results, load_results

PHASES_FILE = "phases.parquet"


@dataclass
class Report:
    """Where a report was written, its figures (name -> PNG path), what was skipped and what failed."""

    index: Path
    figures: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    tables: dict[str, Path] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when nothing failed (what ``--strict`` checks)."""
        return not self.failed


class _Builder:
    """Collects the page's blocks; runs each figure and table in isolation."""

    def __init__(self, report: Report, figures_dir: Path) -> None:
        self.report, self.figures_dir, self.blocks = report, figures_dir, []

    def failed(self, name: str, exc: BaseException, section: str = "") -> None:
        error = f"{type(exc).__name__}: {exc}"
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        self.report.failed[name] = error + (f" ({Path(where.filename).name}:{where.lineno})" if where else "")
        self.blocks.append(note_block(section, name, f"{name} could not be drawn: {self.report.failed[name]}"))

    def compute(self, name: str, make: Callable[[], Any], default: Any = None, section: str = "") -> Any:
        """``make()``, or ``default`` (and a visible note) when it raises."""
        try:
            return make()
        except Exception as exc:   # noqa: BLE001 - any failure becomes a note, never a missing report
            self.failed(name, exc, section)
            return default

    def figure(self, section: str, name: str, title: str, caption: str, draw: Callable[[], object]) -> None:
        fig = None
        try:
            fig = draw()
            if fig is None:
                self.report.skipped[name] = "nothing to show"
                return
            with plt.rc_context({"svg.fonttype": "none"}):   # SVG text stays text: smaller, faster, searchable
                for ext in ("png", "svg"):
                    fig.savefig(self.figures_dir / f"{name}.{ext}", dpi=100 if ext == "png" else None)
        except Exception as exc:   # noqa: BLE001
            self.failed(name, exc, section)
            return
        finally:
            if fig is not None:
                plt.close(fig)
        self.report.figures[name] = self.figures_dir / f"{name}.png"
        self.blocks.append(figure_block(section, name, title, caption))

    def table(self, section: str, name: str, title: str, caption: str, make: Callable[[], pd.DataFrame]) -> None:
        frame = self.compute(name, make, section=section)
        if frame is not None and len(frame):
            self.blocks.append(table_block(section, name, title, caption, frame))
        elif frame is not None:
            self.report.skipped[name] = "nothing to show"


def make_report(results_dir: str | Path, out_dir: str | Path | None = None, *, max_gantt_cells: int | None = None,
                max_gantt_workflows: int = 4) -> Report:
    """Draw every figure and table from the saved tables of ``results_dir``; write PNG + SVG and ``index.html``.

    Gantt charts show every planner x SLA (one repetition each, ``max_gantt_cells`` to
    cap it) for the first ``max_gantt_workflows`` workflows: a study of many workflows
    reads them from the tables rather than from pictures.  The critical-path phases
    are saved as ``results_dir/phases.parquet``.
    """
    results = load_results(results_dir)
    out = Path(out_dir) if out_dir is not None else Path(results_dir) / "report"
    figures_dir = out / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    report = Report(index=out / "index.html")
    b = _Builder(report, figures_dir)
    derived = _derived_tables(b, results, out)
    findings = b.compute("what_to_look_at", lambda: what_to_look_at(
        results.summary, derived["phases"], derived["by_kind"], derived["sla_met"],
        rt.HOST_LOAD_COLUMN in results.summary and results.summary[rt.HOST_LOAD_COLUMN].notna().any()), [])
    _results_sections(b, results, derived)
    _figure_sections(b, results, derived, max_gantt_cells, max_gantt_workflows)
    _time_sections(b, results, derived)
    report.index.write_text(render_page(results, summary_table(results.summary), findings, b.blocks, report.skipped,
                                        report.failed))
    return report


def _derived_tables(b: _Builder, results: Results, out: Path) -> dict[str, Any]:
    """What more than one section reads: phases (saved as Parquet), SLA met, errors by phase and kind, and
    whether the plan and the single simulation predict the same task times."""
    tables = {name: getattr(results, name) for name in ("plans", "sim_tasks", "real_tasks", "plan_workers",
                                                        "sim_workers", "real_workers")}
    phases = b.compute("phases", lambda: ph.results_phases(tables, results.summary, ph.load_parents(results.root)),
                       pd.DataFrame())
    saved = b.compute("phases.parquet", lambda: _save(phases, results.root, out)) if len(phases) else None
    if saved is not None:
        b.report.tables["phases"] = saved
    same = b.compute("plan_equals_simulation", lambda: results.has_real and rf.plan_equals_simulation(
        results.plans, results.sim_tasks, results.real_tasks), False)
    predictors = {"plan": results.plans} if same else {"plan": results.plans, "simulation": results.sim_tasks}
    return {"phases": phases, "plan_equals_simulation": same,
            "sla_met": b.compute("sla_met", lambda: rt.sla_met(results.summary), pd.DataFrame()),
            "by_kind": b.compute("error_by_kind", lambda: rt.error_by_kind(predictors, results.real_tasks),
                                 pd.DataFrame()),
            "by_phase": b.compute("error_by_phase", lambda: rt.error_by_phase(predictors, results.real_tasks),
                                  pd.DataFrame())}


def _save(frame: pd.DataFrame, root: Path, fallback: Path) -> Path:
    """``root/phases.parquet`` beside the other results, or in the report's folder if the results are read-only."""
    for directory in (root, fallback):
        try:
            frame.to_parquet(directory / PHASES_FILE, index=False)
            return directory / PHASES_FILE
        except OSError:
            continue
    raise OSError(f"cannot write {PHASES_FILE} in {root} or {fallback}")


def _results_sections(b: _Builder, results: Results, derived: dict[str, Any]) -> None:
    s = results.summary
    b.table("sla", "sla_met_table", "SLA met", "Per planner and SLA: the share of real runs at or below the planned "
            "makespan (met_plan) and the simulated one (met_simulation); target is the share the SLA promises "
            "(0.95 for p95, 0.5 for the mean).", lambda: derived["sla_met"])
    b.table("sla", "sla_met_by_workflow", "SLA met per workflow", "The same shares per workflow: a planner can keep "
            "its promise on one workflow and break it on another.", lambda: rt.sla_met(s, by_workflow=True))
    b.figure("sla", "sla_met", "SLA met per planner", "Bars: share of real runs within the plan; black ticks: the "
             "SLA's target. The figure planners are compared by.", lambda: sf.sla_met_figure(derived["sla_met"]))
    b.table("resources", "makespan_ci", "Makespan with 95% bootstrap confidence intervals",
            "Mean over repetitions; the CI resamples the repetitions (2000 resamples), none for a single run.",
            lambda: rt.makespan_ci(s))
    b.table("resources", "resources", "GB-seconds and price", "Memory x billed seconds summed over each cell's "
            "workers, beside the price, for the plan, the simulation and the real run.",
            lambda: rt.resources(s, {"planned": results.plan_workers, "simulated": results.sim_workers,
                                     "real": results.real_workers}))
    load_caption = (f"The host's 1-minute load average when the cell ran (summary column {rt.HOST_LOAD_COLUMN}); "
                    "a loaded host slows real runs the plan knew nothing of.")
    if len(s) and rt.HOST_LOAD_COLUMN not in s:
        b.blocks.append(text_block("resources", "host_load", "Host load per cell", "Not recorded: this run's summary "
                                   f"has no {rt.HOST_LOAD_COLUMN} column (the host's 1-minute load average when each "
                                   "cell ran). A loaded host slows real runs the plan knew nothing of."))
    else:
        b.table("resources", "host_load", "Host load per cell", load_caption, lambda: rt.host_load(s))


def _figure_sections(b: _Builder, results: Results, derived: dict[str, Any], max_gantt_cells: int | None,
                     max_gantt_workflows: int) -> None:
    s = results.summary
    b.figure("figures", "makespans", "Planned vs simulated vs real makespan",
             "Per workflow, planner and SLA; bars are the mean over repetitions, whiskers the 95% bootstrap "
             "confidence interval of that mean. Percentile SLAs' simulated values come from Monte Carlo.",
             lambda: rf.makespan_bars(s))
    same = derived["plan_equals_simulation"]
    b.figure("figures", "prediction_error", "Prediction error",
             "Left: each cell's relative makespan error. Right: CDF of per-task start and finish errors "
             "(predicted minus real, joined on task id)." + (
                 " The plan's and the single simulation's task times coincide (the simulation without sampling "
                 "replays the plan's estimates), so one curve stands for both." if same else ""),
             lambda: rf.prediction_error(s, results.plans, results.sim_tasks, results.real_tasks))
    other, other_name = (results.real_tasks, "real") if results.has_real else (results.sim_tasks, "simulated")
    cold = _cold_start_text(_cost_model(results.root))
    workflows = list(dict.fromkeys(s["workflow"])) if len(s) else []
    for wf in workflows[max_gantt_workflows:]:
        b.report.skipped[f"gantt-{_slug(wf)}"] = f"only the first {max_gantt_workflows} workflows get a Gantt chart"
    for wf in workflows[:max_gantt_workflows]:
        cells = rf.gantt_cells(s, wf, max_gantt_cells,
                               "real_makespan_s" if other_name == "real" else "sim_trace_makespan_s")
        b.figure("figures", f"gantt-{_slug(wf)}", f"Gantt: {wf}, planned vs {other_name}",
                 f"Every planner x SLA, one repetition each: the one with the median {other_name} makespan (its "
                 "label says which). The plan (left) and the run (right) share a time axis from submission, one row "
                 "per worker, coloured by profile (thin bars: transfers). Dotted grey: a worker's cold start-up, "
                 "which is why the plan's first tasks start after 0: the plan starts a worker when its first task "
                 f"can be handed to it (at submission for the entry tasks) and the task waits out {cold}.",
                 lambda cells=cells: rf.gantt_pair(results.plans, other, cells, other_name, s))
    b.figure("figures", "cost_vs_makespan", "Cost vs makespan",
             "Each cell: hollow planned, filled measured, a thin line joining the two; colour the planner, marker "
             "the SLA.", lambda: rf.cost_vs_makespan(s))
    b.figure("figures", "makespan_distributions", "Makespan distributions (percentile SLAs)",
             "Monte Carlo replications of the simulated makespan (the repetitions' replications pooled, as the legend "
             "says), the value at the SLA and the real repetitions (triangles).",
             lambda: rf.makespan_distributions(results.montecarlo, s))


def _time_sections(b: _Builder, results: Results, derived: dict[str, Any]) -> None:
    phases = derived["phases"]
    workflows = list(dict.fromkeys(phases["workflow"])) if len(phases) else []
    for wf in workflows:
        b.figure("time", f"phases-{_slug(wf)}", f"Where the time went: {wf}",
                 "Each real run's critical path (from the last task back through the parent each task waited for) "
                 "cut into phases: coordination (parent done -> child ready, and the client fetching the result), "
                 "waiting for a worker, start-up, download, execution, upload. Plan, simulation and real side by "
                 f"side; the table is {PHASES_FILE} in the results directory.",
                 lambda wf=wf: sf.phases_figure(phases, wf))
    if len(phases):
        b.table("time", "phase_totals", "Critical-path seconds per phase (mean over repetitions)", "",
                lambda: ph.phase_totals(phases).drop(columns=["cell_id", "repetition"], errors="ignore")
                .groupby(["workflow", "planner", "sla", "engine"], sort=False).mean().reset_index())
    alone = "" if "simulation" in set(derived["by_phase"].get("predictor", [])) or derived["by_phase"].empty else \
        " The simulation has no rows of its own: its task times equal the plan's (see the prediction error CDF)."
    b.table("errors", "error_by_phase", "Error by phase", "Per task (joined on task id): mean seconds of each phase, "
            "real and predicted, and the mean (signed, absolute) error." + alone, lambda: derived["by_phase"])
    b.table("errors", "error_by_kind", "Error by task kind", "Execution seconds per task kind, real and predicted, "
            "and the median ratio real / predicted (1 is a perfect fit)." + alone, lambda: derived["by_kind"])
    b.table("errors", "cost_model_fit", "Cost-model fit quality", "How well the cost model fitted its history: "
            "samples per task kind, transfer and start-up; sigma is the runtime's log-residual spread (0.3 ~ +-30%); "
            "ratio_p95 the 95th percentile of observed / predicted; source 'history' is fitted, anything else a "
            "prior or an extrapolation.", lambda: rt.cost_model_fit(_cost_model(results.root)))


def _cost_model(root: Path) -> dict[str, Any]:
    path = root / "cost_model.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _cold_start_text(cost_model: dict[str, Any]) -> str:
    """The cost model's cold start as the Gantt caption names it (why a plan's first task starts late)."""
    cold = [s for s in cost_model.get("startup", []) or [] if s.get("cold") and s.get("mean_s") is not None]
    if cold:
        return f"the cost model's cold start ({cold[-1]['mean_s']:.3g} s, {cold[-1].get('source', 'fitted')})"
    seconds = (cost_model.get("params") or {}).get("cold_start_s")
    return f"the cost model's cold start ({seconds:.3g} s, its prior)" if seconds is not None else \
        "the cost model's cold start"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def report_json(report: Report) -> str:
    return json.dumps({"index": str(report.index), "figures": {k: str(v) for k, v in report.figures.items()},
                       "skipped": sorted(report.skipped), "failed": report.failed,
                       "tables": {k: str(v) for k, v in report.tables.items()}}, indent=2)
