"""The report always completes: a failing figure becomes a note naming it, --strict turns it into exit 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments import report_figures as rf
from experiments.cli import main
from experiments.config import parse_config
from experiments.report import make_report
from experiments.results import load_results
from experiments.runner import run_experiment

THREE_REPS = {
    "phases": ["plan", "simulate"],
    "slas": ["mean", "p90"],
    "repetitions": 3,
    "workflow": [{"spec": "gen:fork_join:width=3", "name": "fj"}],
    "planner": [{"name": "heft"}, {"name": "critical-path"}],
    "simulate": {"replications": 20},
}


@pytest.fixture(scope="module")
def three_reps(tmp_path_factory) -> Path:
    """Three repetitions of deterministic plans: equal makespans whose float mean is below their min."""
    root = tmp_path_factory.mktemp("three") / "r"
    run_experiment(parse_config(THREE_REPS, name="three"), root, progress=False, log=lambda m: None)
    return root


def test_three_repetitions_draw_every_figure(three_reps: Path) -> None:
    report = make_report(three_reps)
    assert not report.failed, report.failed
    assert {"makespans", "prediction_error", "cost_vs_makespan", "makespan_distributions", "gantt-fj"} \
        <= set(report.figures)
    s = load_results(three_reps).summary
    assert s.groupby(["planner", "sla"]).size().eq(3).all()


def test_equal_values_whose_mean_rounds_below_their_minimum_draw() -> None:
    """0.95 three times: np.mean gives 0.95 - 1.1e-16, so mean - min < 0 (the reported crash)."""
    assert np.mean([0.95] * 3) - 0.95 < 0
    summary = pd.DataFrame({"workflow": "w", "planner": "p", "sla": "mean", "repetition": [0, 1, 2],
                            "cell_id": ["a", "b", "c"], "planned_makespan_s": [0.95] * 3,
                            "real_makespan_s": [0.95, 0.95, 0.95]})
    fig = rf.makespan_bars(summary)
    assert fig is not None and "bootstrap CI" in fig.axes[0].get_title()


def test_a_failing_figure_is_a_visible_note_and_strict_exits_1(three_reps: Path, monkeypatch, capsys) -> None:
    def broken(summary):
        raise RuntimeError("boom in the cost figure")

    monkeypatch.setattr(rf, "cost_vs_makespan", broken)
    report = make_report(three_reps)
    assert set(report.failed) == {"cost_vs_makespan"} and "RuntimeError: boom" in report.failed["cost_vs_makespan"]
    page = report.index.read_text()
    assert "cost_vs_makespan could not be drawn: RuntimeError: boom in the cost figure" in page
    assert "makespans.png" in page and "gantt-fj.png" in page   # the others are all there
    assert main(["report", str(three_reps)]) == 0
    assert "cost_vs_makespan not drawn" in capsys.readouterr().err
    assert main(["report", str(three_reps), "--strict"]) == 1


def test_phases_are_saved_beside_the_results(three_reps: Path) -> None:
    report = make_report(three_reps)
    phases = pd.read_parquet(three_reps / "phases.parquet")
    assert report.tables["phases"] == three_reps / "phases.parquet"
    assert set(phases["engine"]) == {"plan", "simulation"} and set(phases["edges"]) == {"saved"}
    s = load_results(three_reps).summary.set_index("cell_id")
    plan = phases[phases["engine"] == "plan"].groupby("cell_id")["seconds"].sum()
    assert np.allclose(plan, s.loc[plan.index, "planned_makespan_s"])


def test_run_strict_exits_1_when_its_report_has_a_failed_figure(tmp_path: Path, monkeypatch, capsys) -> None:
    config = tmp_path / "plan_only.toml"
    config.write_text('name = "plan_only"\nphases = ["plan", "simulate"]\nslas = ["mean"]\n'
                      '[[workflow]]\nspec = "gen:fork_join:width=2"\nname = "fj"\n[[planner]]\nname = "heft"\n')

    def broken(*args, **kwargs):
        raise RuntimeError("no Gantt today")

    monkeypatch.setattr(rf, "gantt_pair", broken)
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 0
    assert "gantt-fj not drawn: RuntimeError: no Gantt today" in capsys.readouterr().err
    assert (out / "report" / "index.html").is_file()
    assert main(["run", str(config), "--out", str(out), "--no-progress", "--strict"]) == 1


def test_host_load_is_shown_when_the_summary_records_it(three_reps: Path, tmp_path: Path) -> None:
    before = make_report(three_reps, tmp_path / "before").index.read_text()
    assert "Not recorded: this run&#x27;s summary has no host_load_1m column" in before
    copy = tmp_path / "copy"
    shutil.copytree(three_reps, copy)
    summary = pd.read_parquet(copy / "summary.parquet")
    summary["host_load_1m"] = [1.25 + i for i in range(len(summary))]
    summary.to_parquet(copy / "summary.parquet", index=False)
    page = make_report(copy).index.read_text()
    assert "not recorded" not in page.lower() and "<td>1.25</td>" in page and "load_1m" in page
