"""``planlab run`` / ``planlab report``: the tiny config end to end (every phase, embedded server), resume, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from experiments.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "experiments" / "configs" / "tiny.toml"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, str]:
    """``planlab run tiny.toml --out DIR`` once for the module; its directory and printed output."""
    out = tmp_path_factory.mktemp("cli") / "tiny"
    capture = pytest.MonkeyPatch()
    import io
    import sys
    buffer = io.StringIO()
    capture.setattr(sys, "stdout", buffer)
    try:
        assert main(["run", str(TINY), "--out", str(out), "--no-progress", "--no-report"]) == 0
    finally:
        capture.undo()
    return out, buffer.getvalue()


def test_tiny_config_runs_every_phase_end_to_end(tiny_run) -> None:
    out, printed = tiny_run
    summary = pd.read_parquet(out / "summary.parquet")
    assert len(summary) == 2 * 2 * 2                       # workflows x planners x SLAs x 1 repetition
    for col in ("planned_makespan_s", "simulated_makespan_s", "real_makespan_s", "real_cost"):
        assert summary[col].gt(0).all(), col
    assert summary["plan_error"].notna().all() and summary["sim_error"].notna().all()
    history = pd.read_parquet(out / "history.parquet")
    assert {"profile", "execute"} == set(history["phase"])
    profile_runs = pd.read_parquet(out / "profile" / "runs.parquet")
    assert sorted(set(profile_runs["profile"])) == ["large", "medium", "small"]
    profiled = history[history["phase"] == "profile"]
    assert set(profiled["worker"]) == {"w0"}, "profiling runs measure each task alone, on one worker"
    model = json.loads((out / "cost_model.json").read_text())
    assert model["fitted"] is True, "the profile phase's history fitted the cost model"
    assert summary["prior_tasks"].eq(0).all(), "plans used measured costs, not priors"
    real = pd.read_parquet(out / "real_tasks.parquet")
    assert set(real["engine"]) == {"execute"} and len(real) == 4 * (16 + 5)
    assert len(pd.read_parquet(out / "montecarlo.parquet")) == 4 * 50
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["limits_enforced"], "the executor said which limits it enforced"
    assert (out / "config.toml").read_text() == TINY.read_text()
    assert f"write the report with: planlab report {out}" in printed
    assert "planned_s" in printed and "real_s" in printed and "sim_err_%" in printed


def test_second_run_resumes_and_skips_everything(tiny_run, capsys) -> None:
    out, _ = tiny_run
    assert main(["run", str(TINY), "--out", str(out), "--no-progress", "--no-report"]) == 0
    printed = capsys.readouterr()
    assert "0 cell(s) run, 8 already done" in printed.out
    assert "resuming tiny: 8 of 8 cells already done" in printed.err


def test_report_command_redraws_from_the_directory(tiny_run, tmp_path, capsys) -> None:
    out, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "cells")
    assert main(["report", str(copy), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert Path(listing["index"]).is_file() and listing["skipped"] == []
    assert set(listing["figures"]) == {"makespans", "prediction_error", "gantt-five_branches", "gantt-chain5",
                                       "cost_vs_makespan", "makespan_distributions", "sla_met",
                                       "phases-five_branches", "phases-chain5"}
    assert listing["failed"] == {}
    assert all(Path(p).is_file() and Path(p).with_suffix(".svg").is_file() for p in listing["figures"].values())


def test_run_writes_the_report_and_says_where(tmp_path, capsys) -> None:
    config = tmp_path / "plans.toml"
    config.write_text('phases = ["plan"]\n[[workflow]]\nspec = "gen:chain:length=3"\n[[planner]]\nname = "heft"\n')
    assert main(["run", str(config), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    index = tmp_path / "out" / "report" / "index.html"
    assert printed.rstrip().endswith(f"report: {index}") and index.is_file()
    assert (tmp_path / "out" / "report" / "figures" / "makespans.png").is_file()


def test_default_results_directory_is_results_slash_name(tmp_path, monkeypatch, capsys) -> None:
    config = tmp_path / "plans.toml"
    config.write_text('name = "mine"\nphases = ["plan"]\n[[workflow]]\nspec = "gen:chain:length=2"\n'
                      '[[planner]]\nname = "heft"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(config), "--no-progress", "--no-report"]) == 0
    assert (tmp_path / "results" / "mine" / "summary.parquet").is_file()
    assert "results in results/mine" in capsys.readouterr().out


def test_another_config_into_the_same_directory_is_one_clear_error(tiny_run, tmp_path, capsys) -> None:
    out, _ = tiny_run
    other = tmp_path / "other.toml"
    other.write_text(TINY.read_text().replace('slas = ["mean", "p95"]', 'slas = ["mean"]')
                     .replace('"../data/', f'"{REPO / "experiments" / "data"}/'))
    assert main(["run", str(other), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("planlab run: error:") and "different config" in err and "--fresh" in err
    assert "\n" not in err


def test_run_and_report_errors_are_one_line(tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "not a planlab results directory" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('[[workflow]]\nspec = "gen:chain"\n[[planner]]\nname = "nope"\n')
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown planner 'nope'" in err
