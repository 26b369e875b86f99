"""The report: every figure is drawn from a saved results directory alone, as PNG and SVG, on one HTML page."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments import report_figures as rf
from experiments.config import parse_config
from experiments.report import format_table, make_report, summary_table
from experiments.results import ResultsError, load_results
from experiments.runner import run_experiment

REPO = Path(__file__).resolve().parents[1]

REAL = {
    "phases": ["profile", "plan", "simulate", "execute"],
    "slas": ["mean", "p90"],
    "repetitions": 2,
    "workflow": [{"spec": "gen:five_branches:size=40,rounds=2", "name": "five_branches"}],
    "planner": [{"name": "uniform", "label": "uniform-large", "params": {"profile": "large"}},
                {"name": "critical-path"}],
    "simulate": {"replications": 40},
}

SIMULATED = {
    "phases": ["plan", "simulate"],
    "slas": ["mean", "p95"],
    "workflow": [{"spec": "gen:fork_join:width=3", "name": "fj"},
                 {"spec": str(REPO / "experiments" / "data" / "helloworld-forkjoin-10-chameleon.json"), "name": "hw"}],
    "planner": [{"name": "heft"}, {"name": "wukong", "params": {"profile": "medium"}}],
    "simulate": {"replications": 30},
}

ALL_FIGURES = {"makespans", "prediction_error", "gantt-five_branches", "cost_vs_makespan", "makespan_distributions",
               "sla_met", "phases-five_branches"}


@pytest.fixture(scope="module")
def real_results(tmp_path_factory) -> Path:
    """A run with every phase, then a copy of its directory: the report sees only files."""
    root = tmp_path_factory.mktemp("real")
    outcome = run_experiment(parse_config(REAL, name="real"), root / "run", progress=False, log=lambda m: None)
    assert outcome.results.has_real
    del outcome
    gc.collect()
    shutil.copytree(root / "run", root / "copy")
    shutil.rmtree(root / "copy" / "cells")   # the report needs the consolidated tables only
    return root / "copy"


def test_every_figure_from_saved_results_alone(real_results: Path) -> None:
    report = make_report(real_results)
    assert set(report.figures) == ALL_FIGURES, report.skipped
    for name in ALL_FIGURES:
        for ext in ("png", "svg"):
            path = real_results / "report" / "figures" / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 2000, path
    assert (real_results / "report" / "figures" / "makespans.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (real_results / "report" / "figures" / "makespans.svg").read_bytes()[:500]
    page = report.index.read_text()
    for name in ALL_FIGURES:
        assert f"figures/{name}.png" in page and f"figures/{name}.svg" in page
    assert "<table" in page and "critical-path" in page and "Provenance" in page and "git revision" in page
    assert "Profile phase" in page and page.count("<table") >= 2
    assert not report.failed


def test_summary_table_holds_planned_simulated_real(real_results: Path) -> None:
    results = load_results(real_results)
    table = summary_table(results.summary)
    assert {"planned_s", "simulated_s", "real_s", "plan_err_%", "sim_err_%"} <= set(table.columns)
    assert len(table) == 2 * 2 * 2 and table["real_s"].gt(0).all() and table["simulated_s"].gt(0).all()
    text = format_table(results.summary)
    assert "uniform-large" in text and len(text.splitlines()) == len(table) + 1


def test_percentile_cells_keep_their_monte_carlo_table(real_results: Path) -> None:
    results = load_results(real_results)
    mc = results.montecarlo
    assert set(mc["sla"]) == {"p90"} and len(mc) == 2 * 2 * 40
    s = results.summary.set_index("cell_id")
    for cell, g in mc.groupby("cell_id"):
        assert s.at[cell, "simulated_makespan_s"] == pytest.approx(np.quantile(g["makespan_s"], 0.9), rel=0.05)


def test_task_errors_are_a_join_on_task_id(real_results: Path) -> None:
    results = load_results(real_results)
    errors = rf.task_errors(results.plans, results.real_tasks)
    assert len(errors) == len(results.real_tasks)
    one = errors.iloc[0]
    plan = results.plans.set_index(["cell_id", "task_id"]).loc[(one["cell_id"], one["task_id"])]
    real = results.real_tasks.set_index(["cell_id", "task_id"]).loc[(one["cell_id"], one["task_id"])]
    assert one["finish_error_s"] == pytest.approx(plan["done_s"] - real["done_s"])


def test_report_without_real_runs_compares_plan_and_simulation(tmp_path: Path) -> None:
    run_experiment(parse_config(SIMULATED, name="sim"), tmp_path / "r", progress=False, log=lambda m: None)
    report = make_report(tmp_path / "r", tmp_path / "elsewhere")
    assert report.index == tmp_path / "elsewhere" / "index.html"
    assert {"makespans", "prediction_error", "gantt-fj", "gantt-hw", "cost_vs_makespan",
            "makespan_distributions"} == set(report.figures)
    assert report.skipped["sla_met"] == "nothing to show" and not report.failed
    assert "simulated" in report.index.read_text()


def test_figures_skip_what_is_not_there() -> None:
    empty = pd.DataFrame()
    assert rf.makespan_bars(empty) is None and rf.makespan_distributions(empty, empty) is None
    assert rf.gantt_pair(empty, empty, ["x"]) is None


def test_report_of_a_non_results_directory(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="not a planlab results directory"):
        make_report(tmp_path)


def test_gantt_charts_are_bounded_for_many_workflows(tmp_path: Path) -> None:
    run_experiment(parse_config({**SIMULATED, "slas": ["mean"]}, name="sim"), tmp_path / "r", progress=False,
                   log=lambda m: None)
    report = make_report(tmp_path / "r", max_gantt_workflows=1)
    assert "gantt-fj" in report.figures and "gantt-hw" not in report.figures
    assert "first 1 workflows" in report.skipped["gantt-hw"] and "gantt-hw" in report.index.read_text()


def test_every_error_column_is_shown_in_percent() -> None:
    """The forecast error is a fraction like the others: 0.1 must read +10.0 under its ``_%`` heading."""
    summary = pd.DataFrame({"workflow": ["w"], "real_makespan_s": [1.0], "plan_error": [0.5], "sim_error": [-0.25],
                            "forecast_error": [0.1]})
    table = summary_table(summary)
    assert table.loc[0, ["plan_err_%", "sim_err_%", "forecast_err_%"]].tolist() == pytest.approx([50.0, -25.0, 10.0])
    assert "+10.0" in format_table(summary)
